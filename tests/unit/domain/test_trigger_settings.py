"""A trigger's settings: Lambda's CreateEventSourceMapping ranges and texts."""

from __future__ import annotations

import pytest

from chalicelib.domain.triggers import model
from chalicelib.domain.triggers.model import Trigger, TriggerError

ARN = "arn:aws:lambda:us-east-1:123456789012:function:consumer"


def test_the_defaults_are_lambdas() -> None:
    trigger = model.validate(function=ARN, fifo=False)
    assert (trigger.batch_size, trigger.batching_window, trigger.enabled) == (10, 0, True)
    assert not trigger.report_batch_item_failures and trigger.maximum_concurrency is None


@pytest.mark.parametrize("function", [
    ARN, f"{ARN}:live", f"{ARN}:$LATEST", "python:tests.e2e.consumers:record",
])
def test_a_function_arn_or_a_local_python_target_is_taken(function: str) -> None:
    assert model.validate(function=function, fifo=False).function == function


@pytest.mark.parametrize("function", [
    "consumer", "arn:aws:sqs:us-east-1:123456789012:queue", "python:no-colon",
    "python:mod:fn:extra", f"{ARN} ",
])
def test_anything_else_is_refused_with_lambdas_text(function: str) -> None:
    with pytest.raises(TriggerError, match="functionName") as caught:
        model.validate(function=function, fifo=False)
    assert caught.value.code == "InvalidParameterValueException"


@pytest.mark.parametrize(("settings", "text"), [
    ({"batch_size": 0}, "Member must have value greater than or equal to 1"),
    ({"batch_size": 10001, "batching_window": 1}, "less than or equal to 10000"),
    ({"batch_size": 11}, "Maximum batch window in seconds must be greater than 0 if "
                         "maximum batch size is greater than 10"),
    ({"batching_window": 301}, "less than or equal to 300"),
    ({"batching_window": -1}, "greater than or equal to 0"),
    ({"maximum_concurrency": 1}, "greater than or equal to 2"),
    ({"maximum_concurrency": 1001}, "less than or equal to 1000"),
    ({"patterns": ['{"body": {"a": ["b"]}}'] * 6}, "maximum of 5"),
    ({"patterns": ["nope"]}, "Invalid filter pattern definition"),
])
def test_out_of_range_settings_are_refused_with_lambdas_texts(settings: dict[str, object],
                                                              text: str) -> None:
    with pytest.raises(TriggerError, match=text):
        model.validate(function=ARN, fifo=False, **settings)  # type: ignore[arg-type]


def test_a_batch_over_ten_needs_a_batching_window() -> None:
    assert model.validate(function=ARN, fifo=False, batch_size=10000,
                          batching_window=1).batch_size == 10000


def test_fifo_queues_take_batches_of_at_most_ten_and_no_window() -> None:
    with pytest.raises(TriggerError, match="FIFO"):
        model.validate(function=ARN, fifo=True, batch_size=11, batching_window=5)
    with pytest.raises(TriggerError, match="FIFO"):
        model.validate(function=ARN, fifo=True, batching_window=1)
    assert model.validate(function=ARN, fifo=True, batch_size=10).batch_size == 10


def test_a_trigger_is_stored_and_read_back_whole() -> None:
    trigger = model.with_mapping(model.validate(
        function=ARN, fifo=False, batch_size=50, batching_window=5,
        report_batch_item_failures=True, maximum_concurrency=5,
        patterns=['{"body": {"kind": ["order"]}}'], created=1_800_000_000), "uuid-1")
    again = Trigger.from_json(trigger.to_json())
    assert again == trigger and again.patterns == trigger.patterns


def test_an_update_is_checked_as_a_whole_and_keeps_function_and_mapping() -> None:
    current = model.with_mapping(model.validate(function=ARN, fifo=False), "uuid-1")
    with pytest.raises(TriggerError):
        model.updated(current, fifo=False, batch_size=100)  # a window is needed too
    fresh = model.updated(current, fifo=False, batch_size=100, batching_window=2,
                          enabled=False)
    assert (fresh.function, fresh.mapping, fresh.batch_size, fresh.enabled) == (
        ARN, "uuid-1", 100, False)
