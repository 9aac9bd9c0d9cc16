"""Lambda event source mappings on backing queues: what feeds the delivery function.

A trigger's mapping polls its queue's backing queue (with the delivery function's
role) and invokes the delivery function with the sealed records; its batch settings
are the trigger's. The delivery function always answers with a partial batch
response, so every mapping reports batch item failures. Failures leave as
:class:`~chalicelib.storage.errors.StorageError` (Lambda's code kept for the operator).
"""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.storage.errors import StorageError
from chalicelib.storage.translate import translating

_SERVICE = "lambda"


class Batching(Protocol):
    """What a mapping takes of a trigger."""

    batch_size: int
    batching_window: int
    maximum_concurrency: int | None
    enabled: bool


def _settings(trigger: Batching) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "BatchSize": trigger.batch_size,
        "MaximumBatchingWindowInSeconds": trigger.batching_window,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "Enabled": trigger.enabled,
    }
    if trigger.maximum_concurrency is not None:
        settings["ScalingConfig"] = {"MaximumConcurrency": trigger.maximum_concurrency}
    return settings


class LambdaMappings:
    """Event source mappings from backing queues to one delivery function."""

    def __init__(self, client: Any, delivery_function: str) -> None:
        self._lambda = client
        self._function = delivery_function

    def create(self, backing_arn: str, trigger: Batching) -> str:
        """A new mapping; its UUID."""
        with translating(_SERVICE):
            answer = self._lambda.create_event_source_mapping(
                EventSourceArn=backing_arn, FunctionName=self._function, **_settings(trigger))
        return str(answer["UUID"])

    def update(self, mapping: str, trigger: Batching) -> None:
        with translating(_SERVICE):
            self._lambda.update_event_source_mapping(
                UUID=mapping, FunctionName=self._function, **_settings(trigger))

    def delete(self, mapping: str) -> None:
        """Remove a mapping; one that is gone already is no error."""
        try:
            with translating(_SERVICE):
                self._lambda.delete_event_source_mapping(UUID=mapping)
        except StorageError as err:  # Lambda's not-found is no Gone: its code says so
            if err.code != "ResourceNotFoundException":
                raise
