"""Triggers (the admin plane): a tenant's function attached to a tenant's queue.

    create-trigger ACCOUNT QUEUE FUNCTION [--batch-size N] [--batching-window S]
        [--report-batch-item-failures] [--maximum-concurrency N] [--filter JSON ...]
        [--disabled]
    list-triggers ACCOUNT
    update-trigger ACCOUNT QUEUE [the options above, --no-report-batch-item-failures]
    enable-trigger ACCOUNT QUEUE / disable-trigger ACCOUNT QUEUE
    delete-trigger ACCOUNT QUEUE

FUNCTION is a Lambda function's ARN (a deployed stack: an event source mapping on the
queue's backing queue, created with the operator's credentials, feeds the delivery
function, which invokes FUNCTION) or, on the local stack only,
``python:package.module:function`` (the dev server delivers to it). The trigger is
stored in the queue's record; a refused value changes nothing and is answered with
Lambda's text.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from chalicelib import timeouts
from chalicelib.domain.queues.records import Queue, QueueRecords
from chalicelib.domain.triggers import model
from chalicelib.domain.triggers.model import Trigger, TriggerError
from chalicelib.storage.ports import Change, EventSourceMappings, QueueTable

COMMANDS = ("create-trigger", "list-triggers", "update-trigger", "enable-trigger",
            "disable-trigger", "delete-trigger")


def add_parsers(sub: Any) -> None:
    """The trigger commands of ``python -m tools.admin``."""
    for command in COMMANDS:
        each = sub.add_parser(command)
        each.add_argument("account")
        if command == "list-triggers":
            continue
        each.add_argument("queue")
        if command == "create-trigger":
            each.add_argument("function")
        if command in ("create-trigger", "update-trigger"):
            each.add_argument("--batch-size", type=int)
            each.add_argument("--batching-window", type=int)
            each.add_argument("--maximum-concurrency", type=int)
            each.add_argument("--filter", action="append", dest="filters",
                              help="a Lambda filter pattern (JSON); up to five")
            each.add_argument("--report-batch-item-failures", action="store_true",
                              default=None)
            each.add_argument("--disabled", action="store_true")
        if command == "update-trigger":
            each.add_argument("--no-report-batch-item-failures", action="store_false",
                              dest="report_batch_item_failures")


class NoSuchQueue(LookupError):
    pass


class TriggerConflict(TriggerError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "ResourceConflictException")


class Triggers:
    """The operator's operations on triggers, over the queue table and (deployed) Lambda."""

    def __init__(self, table: QueueTable, records: QueueRecords,
                 mappings: EventSourceMappings | None) -> None:
        self._table = table
        self._records = records
        self._mappings = mappings

    def queue(self, account: str, name: str) -> Queue:
        record = self._table.get(account, name)
        if record is None:
            raise NoSuchQueue(name)
        return self._records.wrap(record)

    def _store(self, queue: Queue, trigger: Trigger | None) -> None:
        text = trigger.to_json() if trigger is not None else ""
        self._records.change(queue, lambda _: Change(trigger=text))

    def create(self, account: str, name: str, function: str, *, batch_size: int | None,
               batching_window: int | None, report_batch_item_failures: bool | None,
               maximum_concurrency: int | None, filters: list[str] | None,
               enabled: bool = True) -> Trigger:
        queue = self.queue(account, name)
        if queue.record.trigger:
            current = Trigger.from_json(queue.record.trigger)
            raise TriggerConflict(
                f"An event source mapping with SQS arn (\" {queue.arn} \") and function "
                f"(\" {current.function} \") already exists. Please update or delete the "
                "existing mapping.")
        trigger = model.validate(
            function=function, fifo=queue.fifo, batch_size=batch_size,
            batching_window=batching_window,
            report_batch_item_failures=bool(report_batch_item_failures),
            maximum_concurrency=maximum_concurrency, patterns=filters or (), enabled=enabled,
            created=int(time.time()))
        self._check_deployable(queue, trigger)
        if self._mappings is not None:
            trigger = model.with_mapping(
                trigger, self._mappings.create(queue.record.backing_arn, trigger))
        self._table.index(queue.record.backing_arn, account, name)
        try:
            self._store(queue, trigger)
        except BaseException:
            if self._mappings is not None and trigger.mapping:
                self._mappings.delete(trigger.mapping)  # nothing half-made stays
            raise
        return trigger

    def _check_deployable(self, queue: Queue, trigger: Trigger) -> None:
        if self._mappings is None:
            return  # the local stack delivers in-process: no Lambda timeout to fit
        if trigger.local:
            raise TriggerError("A python: target runs only on the local stack (make run); "
                               "a deployed stack invokes Lambda functions.")
        visibility = queue.int_attribute("VisibilityTimeout")
        if visibility < timeouts.DELIVERY_LAMBDA_SECONDS:
            raise TriggerError(
                f"Queue visibility timeout: {visibility} seconds is less than Function "
                f"timeout: {timeouts.DELIVERY_LAMBDA_SECONDS} seconds")

    def get(self, account: str, name: str) -> Trigger:
        queue = self.queue(account, name)
        if not queue.record.trigger:
            raise NoSuchQueue(f"{name} has no trigger")
        return Trigger.from_json(queue.record.trigger)

    def update(self, account: str, name: str, **changes: Any) -> Trigger:
        queue = self.queue(account, name)
        current = self.get(account, name)
        fresh = model.updated(current, fifo=queue.fifo, **changes)
        self._check_deployable(queue, fresh)
        if self._mappings is not None and fresh.mapping:
            self._mappings.update(fresh.mapping, fresh)
        self._store(queue, fresh)
        return fresh

    def delete(self, account: str, name: str) -> None:
        queue = self.queue(account, name)
        current = self.get(account, name)
        if self._mappings is not None and current.mapping:
            self._mappings.delete(current.mapping)
        self._table.unindex(queue.record.backing_arn)
        self._store(queue, None)

    def list(self, account: str) -> list[tuple[Queue, Trigger]]:
        found: list[tuple[Queue, Trigger]] = []
        start: str | None = None
        while True:
            page, more = self._records.list_queues(account, "", 1000, start)
            found += [(q, Trigger.from_json(q.record.trigger)) for q in page if q.record.trigger]
            if not more or not page:
                return found
            start = page[-1].name


def describe(queue: Queue, trigger: Trigger) -> dict[str, Any]:
    """A trigger as the command prints it (Lambda's EventSourceMappingConfiguration names)."""
    out: dict[str, Any] = {
        "EventSourceArn": queue.arn, "FunctionArn": trigger.function,
        "BatchSize": trigger.batch_size,
        "MaximumBatchingWindowInSeconds": trigger.batching_window,
        "FunctionResponseTypes": ["ReportBatchItemFailures"]
        if trigger.report_batch_item_failures else [],
        "State": "Enabled" if trigger.enabled else "Disabled",
    }
    if trigger.maximum_concurrency is not None:
        out["ScalingConfig"] = {"MaximumConcurrency": trigger.maximum_concurrency}
    if trigger.filters:
        out["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in trigger.filters]}
    if trigger.mapping:
        out["UUID"] = trigger.mapping
    return out


def run(ops: Triggers, args: argparse.Namespace) -> Any:
    """One trigger command; its JSON answer."""
    command = args.command
    if command == "list-triggers":
        return {"EventSourceMappings": [describe(q, t) for q, t in ops.list(args.account)]}
    if command == "create-trigger":
        trigger = ops.create(
            args.account, args.queue, args.function, batch_size=args.batch_size,
            batching_window=args.batching_window,
            report_batch_item_failures=args.report_batch_item_failures,
            maximum_concurrency=args.maximum_concurrency, filters=args.filters,
            enabled=not args.disabled)
    elif command == "update-trigger":
        trigger = ops.update(
            args.account, args.queue, batch_size=args.batch_size,
            batching_window=args.batching_window,
            report_batch_item_failures=args.report_batch_item_failures,
            maximum_concurrency=args.maximum_concurrency, patterns=args.filters,
            enabled=False if args.disabled else None)
    elif command in ("enable-trigger", "disable-trigger"):
        trigger = ops.update(args.account, args.queue, enabled=command == "enable-trigger")
    else:
        ops.delete(args.account, args.queue)
        return {"Queue": args.queue, "Deleted": True}
    return describe(ops.queue(args.account, args.queue), trigger)
