"""Shared pieces of the trigger tests: a recording target, and a mapping's event built
from a backing queue as Lambda's event source mapping builds it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib import settings
from chalicelib.clock import Clock
from chalicelib.delivery.deliver import Delivery, Invocation
from chalicelib.delivery.process import build_delivery
from chalicelib.domain.queues.records import QueueRecords
from chalicelib.keyservice.api import KeyService
from chalicelib.storage.ports import (
    BackingMessage,
    MessageStore,
    PayloadStore,
    QuarantineStore,
    QueueTable,
)
from tools.admin.triggers import Triggers
from tools.local.triggers import mapping_event

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:consumer"


class Recording:
    """A tenant's function: records every event, answers what ``answer`` says."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], Invocation] = lambda event: Invocation()

    def invoke(self, function: str, event: Mapping[str, Any]) -> Invocation:
        copied = json.loads(json.dumps(event))  # as Lambda would hand it over
        self.events.append(copied)
        return self.answer(copied)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for event in self.events for r in event["Records"]]


def mapping_records(items: list[BackingMessage], backing_arn: str) -> dict[str, Any]:
    """A mapping's event of backing messages (sealed bodies, backing attributes), as
    the local mappings build it from a backing queue's receive."""
    return mapping_event([{
        "MessageId": i.message_id, "ReceiptHandle": i.receipt_handle, "Body": i.body,
        "Attributes": dict(i.attributes),
        "MD5OfBody": hashlib.md5(i.body.encode("utf-8")).hexdigest(),
    } for i in items], backing_arn, "us-east-1")


def delivery_over(
    *, table: QueueTable, store: MessageStore, payloads: PayloadStore,
    quarantine: QuarantineStore, key_service: KeyService, targets: Recording, clock: Clock,
) -> Delivery:
    return build_delivery(settings.get(), table=table, store=store, payloads=payloads,
                          quarantine=quarantine, key_service=key_service, targets=targets,
                          clock=clock, local_clock=clock)


def trigger_operations(table: QueueTable, clock: Clock) -> Triggers:
    conf = settings.get()
    records = QueueRecords(table, region=conf.region, default_cmk=conf.default_kms_key,
                           clock=clock, cache_ttl=0)
    return Triggers(table, records, None)


def create(ops: Triggers, queue: str, **options: Any) -> None:
    values: dict[str, Any] = {"batch_size": None, "batching_window": None,
                              "report_batch_item_failures": None,
                              "maximum_concurrency": None, "filters": None}
    values.update(options)
    function = values.pop("function", FUNCTION)
    ops.create("000000000000", queue, function, **values)
