"""Triggers on the local stack: the dev server plays Lambda's event source mappings.

For every enabled trigger a worker of its own polls the queue's backing queue as a
mapping would (up to the trigger's batch size, gathering for its batching window),
hands the sealed records to the same delivery code the delivery Lambda runs, and
deletes what that code does not report failed; what it reports stays for redelivery
after the visibility timeout, and the backing queue's redrive policy moves a message
that keeps failing to its dead-letter queue. A ``python:package.module:function``
target is called in that worker, with SQS's own event and a context like Lambda's;
a Lambda ARN target cannot run here (its deliveries fail, and stay in the queue).
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import boto3

from chalicelib.aws.clients import Clients
from chalicelib.delivery.deliver import Delivery, Invocation
from chalicelib.delivery.process import build
from chalicelib.domain.triggers.model import Trigger
from chalicelib.observability import process as telemetry
from chalicelib.settings import Settings
from chalicelib.storage.queue_table import record_from_item

log = logging.getLogger("sealq.devserver")

# How often the runner looks for triggers created, changed or deleted.
SCAN_INTERVAL = 1.0
# The longest a worker's poll waits, so a stop is noticed soon.
POLL_SECONDS = 1


class LocalContext:
    """What a Lambda function's ``context`` offers that SQS handlers read."""

    def __init__(self, function: str) -> None:
        self.function_name = function.rsplit(":", 1)[-1]
        self.function_version = "$LATEST"
        self.invoked_function_arn = function
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + 900

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class PythonTargets:
    """Python callables named ``python:package.module:function``, called in-process."""

    def invoke(self, function: str, event: Mapping[str, Any]) -> Invocation:
        if not function.startswith("python:"):
            return Invocation(error="LambdaTargetNotLocal")
        _, module_name, attribute = function.split(":")
        try:
            target: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as err:
            log.warning("trigger target %s cannot be loaded: %s", function, type(err).__name__)
            return Invocation(error="Runtime.ImportModuleError")
        try:
            answer = target(json.loads(json.dumps(event)), LocalContext(function))
        except Exception as err:  # noqa: BLE001 - the function's error, as Lambda reports it
            log.info("trigger target %s raised %s", function, type(err).__name__)
            return Invocation(error="Unhandled")
        try:
            return Invocation(payload=json.loads(json.dumps(answer)))
        except (TypeError, ValueError):
            return Invocation(error="Runtime.MarshalError")


def mapping_event(messages: Sequence[Mapping[str, Any]], backing_arn: str, region: str
                  ) -> dict[str, Any]:
    """The event a Lambda event source mapping builds from a backing queue's receive
    (``AttributeNames=["All"]``): sealed bodies, the backing queue's attributes."""
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": dict(m.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": backing_arn,
        "awsRegion": region,
    } for m in messages]}


class _Worker:
    """One trigger's mapping: poll, deliver, delete what was delivered."""

    def __init__(self, delivery: Delivery, sqs: Any, backing_url: str, backing_arn: str,
                 trigger: Trigger, region: str) -> None:
        self.trigger = trigger
        self._delivery = delivery
        self._sqs = sqs
        self._url = backing_url
        self._arn = backing_arn
        self._region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sealq-trigger-{backing_arn}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=POLL_SECONDS + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._gather()
                if batch:
                    self._deliver(batch)
            except Exception as err:  # noqa: BLE001 - a worker keeps polling
                log.warning("trigger worker of %s: %s", self._arn, type(err).__name__)
                self._stop.wait(POLL_SECONDS)

    def _gather(self) -> list[dict[str, Any]]:
        """Up to the batch size, gathering for the batching window when it has one."""
        size, window = self.trigger.batch_size, self.trigger.batching_window
        until = time.monotonic() + window
        batch: list[dict[str, Any]] = []
        while len(batch) < size and not self._stop.is_set():
            got = self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=min(10, size - len(batch)),
                WaitTimeSeconds=POLL_SECONDS, MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            batch += got
            if time.monotonic() >= until and (batch or not got):
                break
        return batch

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        answer = self._delivery.handle(mapping_event(batch, self._arn, self._region))
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(QueueUrl=self._url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                for n, m in enumerate(done[start:start + 10])])


class TriggerRunner:
    """The local stack's mappings: one worker per enabled trigger, kept in step with the
    queue table (a trigger created, changed, disabled or deleted shows within a second)."""

    def __init__(self, delivery: Delivery, ddb: Any, table: str, sqs: Any, region: str) -> None:
        self._delivery = delivery
        self._ddb = ddb
        self._table = table
        self._sqs = sqs
        self._region = region
        self._workers: dict[str, _Worker] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sealq-triggers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=SCAN_INTERVAL + 5)
        for worker in self._workers.values():
            worker.stop()
        self._workers.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as err:  # noqa: BLE001 - the next scan tries again
                log.warning("trigger scan failed: %s", type(err).__name__)
            self._stop.wait(SCAN_INTERVAL)

    def _sync(self) -> None:
        wanted: dict[str, tuple[str, Trigger]] = {}
        for record in self._triggered():
            trigger = Trigger.from_json(record.trigger)
            if trigger.enabled:
                wanted[record.backing_arn] = (record.backing_url, trigger)
        for arn in [a for a, w in self._workers.items()
                    if a not in wanted or wanted[a][1] != w.trigger]:
            self._workers.pop(arn).stop()
        for arn, (url, trigger) in wanted.items():
            if arn not in self._workers:
                self._workers[arn] = _Worker(self._delivery, self._sqs, url, arn, trigger,
                                             self._region)

    def _triggered(self) -> list[Any]:
        pages = self._ddb.get_paginator("scan").paginate(
            TableName=self._table, FilterExpression="attribute_exists(#tr)",
            ExpressionAttributeNames={"#tr": "trigger"}, ConsistentRead=True)
        return [record_from_item(item) for page in pages for item in page.get("Items", [])]


def runner(conf: Settings, session: boto3.session.Session | None = None) -> TriggerRunner:
    """The local stack's trigger runner over its AWS endpoint, with the in-process key
    service and Python targets."""
    clients = Clients(session or boto3.session.Session(), conf.region, conf.aws_endpoint)
    delivery = build(conf, clients, targets=PythonTargets(), metrics=telemetry.get())
    return TriggerRunner(delivery, clients.get("queues"), conf.queues_table,
                         clients.get("long_poll"), conf.region)
