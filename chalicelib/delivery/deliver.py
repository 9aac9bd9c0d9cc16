"""One batch of a trigger: the event source mapping's sealed records in, opened ones out.

A Lambda event source mapping on a backing queue feeds the delivery function sealed
records. Each is opened in its sealq queue exactly as ReceiveMessage opens it (the
key service and the tier-1 cache; no KMS permission here), written as SQS's own
Lambda record, matched against the trigger's filters and handed to the tenant's
function. The answer to the mapping is a partial batch response: what is not listed
is deleted from the backing queue by the mapping, what is listed stays for
redelivery after the visibility timeout (and its dead-letter queue after
``maxReceiveCount``). So:

- the function succeeds: its batch is deleted; it errs or times out: the batch stays;
  with ReportBatchItemFailures only the items it names stay;
- a message no filter matches is deleted unseen, as Lambda deletes it;
- a tampered message is quarantined (never handed over, never blocking the batch); one
  whose key KMS refuses, or that a transient fault kept from opening, stays, exactly as
  on ReceiveMessage;
- FIFO: a message that stays holds the rest of its message group in this batch (the
  group's order is kept), and only its group.

No body, attribute or key reaches a log line or a metric.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib import errors
from chalicelib.domain.messages.quarantine import Quarantine
from chalicelib.domain.messages.receiving import KeyRefused, Receiver, Tampered
from chalicelib.domain.queues.records import Queue, QueueRecords
from chalicelib.domain.triggers import filters
from chalicelib.domain.triggers.model import Trigger
from chalicelib.observability.metrics import (
    DELIVERED_MESSAGES,
    FAILED_DELIVERIES,
    FILTERED_MESSAGES,
    FUNCTION_DURATION,
    NO_METRICS,
    REDRIVEN_MESSAGES,
    Metrics,
)
from chalicelib.protocol import lambda_event
from chalicelib.storage.errors import StorageError
from chalicelib.storage.ports import BackingMessage

log = logging.getLogger("sealq.delivery")


@dataclass(frozen=True)
class Invocation:
    """What a tenant's function answered: its error (it raised, timed out, or could
    not be invoked), else its response payload."""

    error: str | None = None
    payload: Any = None


class Targets(Protocol):
    def invoke(self, function: str, event: Mapping[str, Any]) -> Invocation:
        """Invoke ``function`` synchronously with ``event``; never raises."""
        ...


@dataclass
class _Batch:
    """One mapping batch as it is worked through."""

    held: list[str] = field(default_factory=list)  # stay in the backing queue
    quarantined: int = 0
    filtered: int = 0
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (id, record)
    blocked: set[str] = field(default_factory=set)  # FIFO groups held in this batch


class Delivery:
    def __init__(
        self, *, records: QueueRecords, receiver: Receiver, quarantine: Quarantine,
        targets: Targets, region: str, metrics: Metrics = NO_METRICS,
    ) -> None:
        self._records = records
        self._receiver = receiver
        self._quarantine = quarantine
        self._targets = targets
        self._region = region
        self._metrics = metrics

    def handle(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """A mapping's event in, its partial batch response out; never raises."""
        raw = event.get("Records") if isinstance(event, Mapping) else None
        records = [r for r in raw if isinstance(r, Mapping)] if isinstance(raw, list) else []
        by_source: dict[str, list[Mapping[str, Any]]] = {}
        for rec in records:
            by_source.setdefault(str(rec.get("eventSourceARN", "")), []).append(rec)
        failed: list[str] = []
        for backing_arn, group in by_source.items():
            try:
                failed += self._deliver(backing_arn, group)
            except Exception as err:  # noqa: BLE001 - a bug of sealq's holds the batch
                log.error("trigger batch of %d held: %s", len(group), type(err).__name__)
                failed += [str(r.get("messageId", "")) for r in group]
        return lambda_event.batch_response(failed)

    def _deliver(self, backing_arn: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
        ids = [str(r.get("messageId", "")) for r in records]
        try:
            queue, trigger = self._trigger_of(backing_arn)
        except (errors.SqsError, StorageError) as err:
            log.warning("trigger batch of %d held: its queue cannot be read (%s)", len(ids),
                        type(err).__name__)
            return ids
        if trigger is None or not trigger.enabled:
            log.warning("batch of %d for %s held: the queue has no enabled trigger",
                        len(ids), queue.arn)
            return ids
        started = time.perf_counter()
        batch = _Batch()
        for rec in records:
            self._open(queue, trigger, _backing(rec), batch)
        outcome = "ok"
        delivered = [message_id for message_id, _ in batch.pending]
        if batch.pending:
            invocation, seconds = self._invoke(trigger, batch)
            self._metrics.add(FUNCTION_DURATION, seconds * 1000.0)
            if invocation.error is not None:
                outcome = "function error"
                batch.held += delivered
            elif trigger.report_batch_item_failures:
                failed = lambda_event.failed_items(invocation.payload, set(delivered))
                if failed is None:
                    outcome = "invalid batch response"
                    batch.held += delivered
                elif failed:
                    outcome = "partial"
                    batch.held += [i for i in delivered if i in failed]
        held = set(batch.held)
        handed_over = len([i for i in delivered if i not in held])
        self._count(queue, records, batch, held, handed_over)
        log.info("trigger %s -> %s: batch %d, %s, delivered %d, held %d, filtered %d, "
                 "quarantined %d, %.1f ms", queue.arn, trigger.function, len(records), outcome,
                 handed_over, len(held), batch.filtered,
                 batch.quarantined, (time.perf_counter() - started) * 1000.0,
                 extra={"trigger": queue.arn, "outcome": outcome, "batch": len(records)})
        return [i for i in ids if i in held]

    def _trigger_of(self, backing_arn: str) -> tuple[Queue, Trigger | None]:
        queue = self._records.by_backing_arn(backing_arn)
        trigger = Trigger.from_json(queue.record.trigger) if queue.record.trigger else None
        return queue, trigger

    def _open(self, queue: Queue, trigger: Trigger, item: BackingMessage, batch: _Batch) -> None:
        group = item.attributes.get("MessageGroupId") if queue.fifo else None
        if group is not None and group in batch.blocked:
            batch.held.append(item.message_id)
            return
        try:
            message = self._receiver.open_one(queue, item)
        except Tampered as tampered:
            try:
                self._quarantine.put(queue, item, tampered.reason)
                batch.quarantined += 1
                return  # out of the queue for good: never handed over
            except StorageError as err:
                log.warning("tampered message %s could not be quarantined yet: %s",
                            item.message_id, err.code)
                self._hold(item, group, batch)
                return
        except (KeyRefused, errors.SqsError, StorageError) as err:
            log.warning("message %s of %s held: %s", item.message_id, queue.arn,
                        getattr(getattr(err, "error", err), "code", type(err).__name__))
            self._hold(item, group, batch)
            return
        record = lambda_event.record(message, queue_arn=queue.arn, region=self._region)
        if not filters.matches_any(trigger.patterns, filters.record_view(
                record["body"], record["attributes"], record["messageAttributes"])):
            batch.filtered += 1
            return
        batch.pending.append((item.message_id, record))

    @staticmethod
    def _hold(item: BackingMessage, group: str | None, batch: _Batch) -> None:
        batch.held.append(item.message_id)
        if group is not None:
            batch.blocked.add(group)

    def _invoke(self, trigger: Trigger, batch: _Batch) -> tuple[Invocation, float]:
        # What a held FIFO message precedes in its group was held too (in _open): the
        # group's order holds; what it follows is delivered.
        records = [rec for _, rec in batch.pending]
        began = time.perf_counter()
        invocation = self._targets.invoke(trigger.function, lambda_event.event(records))
        return invocation, time.perf_counter() - began

    def _count(self, queue: Queue, records: Sequence[Mapping[str, Any]], batch: _Batch,
               held: set[str], delivered: int) -> None:
        self._metrics.add(DELIVERED_MESSAGES, delivered)
        self._metrics.add(FAILED_DELIVERIES, len(held))
        self._metrics.add(FILTERED_MESSAGES, batch.filtered)
        limit = _max_receives(queue)
        if limit is not None:
            last = [r for r in records if str(r.get("messageId")) in held
                    and _receives(r) >= limit]
            self._metrics.add(REDRIVEN_MESSAGES, len(last))


def _backing(rec: Mapping[str, Any]) -> BackingMessage:
    attributes = rec.get("attributes")
    return BackingMessage(
        message_id=str(rec.get("messageId", "")),
        receipt_handle=str(rec.get("receiptHandle", "")),
        body=str(rec.get("body", "")),
        attributes={str(k): str(v) for k, v in attributes.items()}
        if isinstance(attributes, Mapping) else {},
    )


def _max_receives(queue: Queue) -> int | None:
    policy = queue.attributes.get("RedrivePolicy")
    if not policy:
        return None
    return int(json.loads(policy)["maxReceiveCount"])


def _receives(rec: Mapping[str, Any]) -> int:
    attributes = rec.get("attributes")
    try:
        return int(attributes.get("ApproximateReceiveCount", 0))  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        return 0
