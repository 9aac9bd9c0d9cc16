"""Metrics and log context, recorded where things happen and sent where the root says.

Domain code records events through the small :class:`Metrics` port, by name from the
fixed set below, with bounded dimensions (action names, sealq's error codes, cache
tier, KMS operation): never a key, secret, body or queue name. The composition root
picks the sink: in Lambda a :class:`Recorder` whose samples go out as CloudWatch
embedded-metric-format (EMF) lines through Powertools Metrics once per invocation;
locally the same recorder only keeps totals (``make stats``).

Log lines get the request's ids from :func:`log_context`, so they reach every line
of a request without any logging library below the root. Powertools is imported
only by the functions that configure it (cold start: nothing here at import).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

NAMESPACE = "sealq"

# Metric names, each with its one unit and the dimensions it is recorded with.
REQUESTS = "Requests"  # Action
ERRORS = "Errors"  # Action, Code
KEY_CACHE_HITS = "KeyCacheHits"  # Tier: "1" the handler's cache, "2" the key service's
KEY_CACHE_MISSES = "KeyCacheMisses"  # Tier
KEY_SERVICE_CALLS = "KeyServiceCalls"
KEY_SERVICE_LATENCY = "KeyServiceLatency"
KMS_CALLS = "KmsCalls"  # Operation: GenerateDataKey, Decrypt
KMS_THROTTLED = "KmsThrottled"
SEALED_BYTES = "SealedBytes"
QUARANTINED_MESSAGES = "QuarantinedMessages"

UNITS: Mapping[str, str] = {
    REQUESTS: "Count",
    ERRORS: "Count",
    KEY_CACHE_HITS: "Count",
    KEY_CACHE_MISSES: "Count",
    KEY_SERVICE_CALLS: "Count",
    KEY_SERVICE_LATENCY: "Milliseconds",
    KMS_CALLS: "Count",
    KMS_THROTTLED: "Count",
    SEALED_BYTES: "Bytes",
    QUARANTINED_MESSAGES: "Count",
}
HANDLER_TIER = "1"
KEY_SERVICE_TIER = "2"
# The Purpose of a KMS call: a queue's data key, or a deployment secret (service
# secrets, sealed access-key secrets).
FOR_DATA_KEYS = "DataKey"
FOR_SECRETS = "Secret"

_Dimensions = tuple[tuple[str, str], ...]


class Metrics(Protocol):
    """Where domain code records an event: ``add(KMS_CALLS, Operation="Decrypt")``."""

    def add(self, name: str, value: float = 1, **dimensions: str) -> None: ...


class NoMetrics:
    """Records nothing (the default of every component; tests that do not look)."""

    def add(self, name: str, value: float = 1, **dimensions: str) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()


@dataclass(frozen=True)
class Total:
    """A metric's sum and number of samples since the recorder started."""

    name: str
    dimensions: Mapping[str, str]
    value: float
    samples: int


class Recorder:
    """Thread-safe metrics of one process: totals since start, and (when ``publish``)
    the samples since the last :meth:`flush`, which sends them as EMF."""

    def __init__(self, *, publish: bool = False, namespace: str = NAMESPACE) -> None:
        self._publish = publish
        self._namespace = namespace
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, _Dimensions], list[float]] = {}
        self._totals: dict[tuple[str, _Dimensions], tuple[float, int]] = {}

    def add(self, name: str, value: float = 1, **dimensions: str) -> None:
        if name not in UNITS:
            raise ValueError(f"unknown metric {name!r}")
        key = (name, tuple(sorted(dimensions.items())))
        with self._lock:
            total, samples = self._totals.get(key, (0.0, 0))
            self._totals[key] = (total + value, samples + 1)
            if self._publish:
                self._pending.setdefault(key, []).append(float(value))

    def totals(self) -> list[Total]:
        with self._lock:
            items = sorted(self._totals.items())
        return [Total(name, dict(dims), value, n) for (name, dims), (value, n) in items]

    def flush(self) -> None:
        """Print the pending samples as EMF lines (one per dimension set) and forget them."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            emit_emf(pending, self._namespace)


def emit_emf(
    samples: Mapping[tuple[str, _Dimensions], list[float]], namespace: str = NAMESPACE,
) -> None:
    """One EMF blob per dimension set, through Powertools Metrics (printed to stdout).

    EMF applies a blob's dimensions to every metric in it, so metrics are grouped by
    their dimensions; counts go out summed, latencies as their values. No ``service``
    dimension is added, so alarms find e.g. ``KmsThrottled`` under its name alone; a
    deployed stack publishes under a namespace of its own (``sealq/<stack name>``).
    """
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    groups: dict[_Dimensions, dict[str, list[float]]] = {}
    for (name, dims), values in samples.items():
        groups.setdefault(dims, {})[name] = values
    for dims, metrics in sorted(groups.items()):
        blob = AmazonCloudWatchEMFProvider(namespace=namespace, service="")
        for dim_name, dim_value in dims:
            blob.add_dimension(name=dim_name, value=dim_value)
        for name, values in sorted(metrics.items()):
            unit = UNITS[name]
            # Powertools prints a blob by itself when a metric reaches 100 values.
            for value in values if unit == "Milliseconds" else [sum(values)]:
                blob.add_metric(name=name, unit=unit, value=value)
        blob.flush_metrics()


# -- log context ---------------------------------------------------------------------

_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "sealq_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` (ids only) to every log record of this thread until the block ends."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def current(name: str) -> str | None:
    """A field of the current :func:`log_context` (e.g. the request id to pass on)."""
    return (_context.get() or {}).get(name)


class ContextFilter(logging.Filter):
    """Copies the current :func:`log_context` onto each record it sees (as extra keys)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class _Stdout:
    """Whatever ``sys.stdout`` is at the time of writing (Lambda's, or a test's capture)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


# Loggers whose DEBUG lines carry request or response bodies (botocore logs KMS's
# Plaintext): never below WARNING, whatever sealq's own level is.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "aws_encryption_sdk")
_configured = threading.Lock()
_powertools: Any = None  # the Powertools Logger that owns the "sealq" logger, once made


def configure_json_logs(level: str) -> None:
    """sealq's loggers (``sealq`` and its children) write Powertools' structured JSON
    lines to stdout at ``level``, with the :func:`log_context` ids; once per process,
    later calls only change the level."""
    from aws_lambda_powertools import Logger

    global _powertools
    sealq = logging.getLogger(NAMESPACE)
    with _configured:
        if _powertools is None:
            # Chalice's own plain handler on the same logger would print every line twice.
            for handler in list(sealq.handlers):
                sealq.removeHandler(handler)
            _powertools = Logger(service=NAMESPACE, level=level, stream=_Stdout())  # type: ignore[arg-type]
            _powertools.registered_handler.addFilter(ContextFilter())
            # Records reach the root's handlers too; Powertools filters them out there
            # (Lambda's) and pytest's capture keeps seeing them.
            sealq.propagate = True
        else:
            _powertools.setLevel(level)  # Lambda's log-level control still comes first
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))


def lambda_ids(lambda_context: Any, request_context: Mapping[str, Any] | None = None
               ) -> dict[str, str | None]:
    """The Lambda and API Gateway request ids of an invocation, as log fields."""
    function_id = getattr(lambda_context, "aws_request_id", None)
    gateway_id = (request_context or {}).get("requestId")
    return {
        "function_request_id": function_id if isinstance(function_id, str) else None,
        "apigw_request_id": gateway_id if isinstance(gateway_id, str) else None,
    }


def unconfigure_json_logs() -> None:
    """Undo :func:`configure_json_logs` (tests): sealq's loggers back to plain logging."""
    global _powertools
    sealq = logging.getLogger(NAMESPACE)
    with _configured:
        _powertools = None
        for handler in list(sealq.handlers):
            sealq.removeHandler(handler)
        for attribute in ("init", "powertools_handler", "powertools_buffer_config",
                          "powertools_buffer_cache"):
            sealq.__dict__.pop(attribute, None)
        sealq.setLevel(logging.NOTSET)
