"""A trigger: a tenant's function attached to a tenant's queue, as an event source mapping.

Its settings are Lambda's ``CreateEventSourceMapping`` parameters for SQS, with
Lambda's ranges: batch size 1-10,000 (FIFO 1-10), batching window 0-300 s (a batch
over 10 needs at least 1 s; FIFO queues take none), maximum concurrency 2-1,000,
up to five filter patterns. A refused value is a :class:`TriggerError` with
Lambda's text, raised before anything changes. A queue has at most one trigger; it
is stored in the queue's record, so it goes with the queue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from chalicelib.domain.triggers import filters

# A Python callable the local stack invokes: python:package.module:function.
PYTHON_TARGET = re.compile(r"python:[A-Za-z_][\w.]*:[A-Za-z_]\w*", re.ASCII)
# A Lambda function's ARN, with an optional version or alias.
FUNCTION_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}"
    r"(:(\$LATEST|[A-Za-z0-9_-]{1,128}))?", re.ASCII)
DEFAULT_BATCH_SIZE = 10


class TriggerError(ValueError):
    """Lambda's refusal of a mapping's parameters; ``code`` is its exception name."""

    def __init__(self, message: str, code: str = "InvalidParameterValueException") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Trigger:
    """A trigger's settings, and the event source mapping that feeds it when deployed."""

    function: str
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int | None = None
    filters: tuple[str, ...] = ()
    enabled: bool = True
    # The Lambda event source mapping on the backing queue (None: the local stack's).
    mapping: str | None = None
    created: int = 0
    patterns: tuple[dict[str, Any], ...] = field(default=(), compare=False, repr=False)

    @property
    def local(self) -> bool:
        """A Python callable that only the local stack can invoke."""
        return self.function.startswith("python:")

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("patterns")
        data["filters"] = list(self.filters)
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Trigger:
        data = json.loads(text)
        data["filters"] = tuple(data.get("filters", ()))
        trigger = cls(**data)
        return replace(trigger, patterns=tuple(filters.parse(p) for p in trigger.filters))


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TriggerError(f"{name} must be an integer.")
    if not low <= value <= high:
        bound = f"greater than or equal to {low}" if value < low else \
            f"less than or equal to {high}"
        raise TriggerError(
            f"1 validation error detected: Value '{value}' at '{name[0].lower() + name[1:]}' "
            f"failed to satisfy constraint: Member must have value {bound}")
    return value


def validate(
    *, function: str, fifo: bool, batch_size: int | None = None,
    batching_window: int | None = None, report_batch_item_failures: bool = False,
    maximum_concurrency: int | None = None, patterns: Sequence[str] = (),
    enabled: bool = True, created: int = 0,
) -> Trigger:
    """A trigger from CreateEventSourceMapping's parameters, as Lambda checks them."""
    if not (PYTHON_TARGET.fullmatch(function) or FUNCTION_ARN.fullmatch(function)):
        raise TriggerError(
            f"1 validation error detected: Value '{function}' at 'functionName' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?"
            "(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))? "
            "(sealq also takes python:package.module:function on the local stack)")
    size = DEFAULT_BATCH_SIZE if batch_size is None else _int("BatchSize", batch_size, 1, 10000)
    window = 0 if batching_window is None else _int(
        "MaximumBatchingWindowInSeconds", batching_window, 0, 300)
    if fifo:
        if size > 10:
            raise TriggerError("Batch size for SQS FIFO queues must be between 1 and 10.")
        if window:
            raise TriggerError(
                "Batching window is not supported for FIFO queues.")
    elif size > 10 and window < 1:
        raise TriggerError("Maximum batch window in seconds must be greater than 0 if "
                           "maximum batch size is greater than 10")
    if maximum_concurrency is not None:
        _int("MaximumConcurrency", maximum_concurrency, 2, 1000)
    if len(patterns) > filters.MAX_FILTERS:
        raise TriggerError(f"The number of filters exceeds the maximum of {filters.MAX_FILTERS}.")
    try:
        parsed = tuple(filters.parse(p) for p in patterns)
    except filters.FilterError as err:
        raise TriggerError(f"Invalid filter pattern definition. {err}") from None
    return Trigger(function, size, window, report_batch_item_failures, maximum_concurrency,
                   tuple(patterns), enabled, None, created, parsed)


def updated(
    current: Trigger, *, fifo: bool, batch_size: int | None = None,
    batching_window: int | None = None, report_batch_item_failures: bool | None = None,
    maximum_concurrency: int | None = None, patterns: Sequence[str] | None = None,
    enabled: bool | None = None,
) -> Trigger:
    """``current`` with UpdateEventSourceMapping's changes (None: unchanged), checked
    as a whole; the function and the mapping stay."""
    fresh = validate(
        function=current.function, fifo=fifo,
        batch_size=current.batch_size if batch_size is None else batch_size,
        batching_window=current.batching_window if batching_window is None
        else batching_window,
        report_batch_item_failures=current.report_batch_item_failures
        if report_batch_item_failures is None else report_batch_item_failures,
        maximum_concurrency=current.maximum_concurrency if maximum_concurrency is None
        else maximum_concurrency,
        patterns=current.filters if patterns is None else patterns,
        enabled=current.enabled if enabled is None else enabled,
        created=current.created,
    )
    return replace(fresh, mapping=current.mapping)


def with_mapping(trigger: Trigger, mapping: str) -> Trigger:
    """``trigger`` fed by the event source mapping ``mapping`` (a deployed stack)."""
    return replace(trigger, mapping=mapping)
