"""The delivery Lambda's own container, built on first use from the environment.

Triggers' event source mappings invoke it with their backing queues' sealed records;
it opens them as the handler does (the key service, the tier-1 cache; no KMS
permission) and invokes the tenants' functions (:mod:`chalicelib.delivery.deliver`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3

from chalicelib import settings as settings_module
from chalicelib.aws.clients import Clients
from chalicelib.clock import MONOTONIC_CLOCK, SYSTEM_CLOCK, Clock
from chalicelib.delivery.deliver import Delivery, Targets
from chalicelib.delivery.targets import LambdaTargets
from chalicelib.domain.messages.services import message_services
from chalicelib.domain.queues.records import QueueRecords
from chalicelib.domain.queues.redrive import Redrive
from chalicelib.keyservice import process as key_service_process
from chalicelib.keyservice.api import KeyService
from chalicelib.observability import process as telemetry
from chalicelib.observability.logs import lambda_ids, log_context
from chalicelib.observability.metrics import NO_METRICS, Metrics
from chalicelib.protocol import lambda_event
from chalicelib.settings import Settings
from chalicelib.storage.backing import SqsMessageStore
from chalicelib.storage.payloads import S3PayloadStore
from chalicelib.storage.ports import MessageStore, PayloadStore, QuarantineStore, QueueTable
from chalicelib.storage.quarantine import S3QuarantineStore
from chalicelib.storage.queue_table import DynamoQueueTable

log = logging.getLogger("sealq.delivery")


def build_delivery(
    conf: Settings, *, table: QueueTable, store: MessageStore, payloads: PayloadStore,
    quarantine: QuarantineStore, key_service: KeyService, targets: Targets,
    clock: Clock = SYSTEM_CLOCK, local_clock: Clock = MONOTONIC_CLOCK,
    metrics: Metrics = NO_METRICS,
) -> Delivery:
    """A delivery container over the given ports, key service and tenants' functions."""
    records = QueueRecords(table, region=conf.region, default_cmk=conf.default_kms_key,
                           clock=clock, local_clock=local_clock, cache_ttl=conf.queue_cache_ttl)
    found = message_services(conf, key_service=key_service, redrive=Redrive(records, store),
                             messages=store, payloads=payloads, quarantine=quarantine,
                             clock=clock, metrics=metrics)
    return Delivery(records=records, receiver=found.receiver, quarantine=found.quarantine,
                    targets=targets, region=conf.region, metrics=metrics)


def build(conf: Settings, clients: Clients, *, targets: Targets | None = None,
          metrics: Metrics = NO_METRICS) -> Delivery:
    """The delivery container on AWS (or an AWS endpoint such as moto); ``targets``
    default to the tenants' Lambda functions."""
    return build_delivery(
        conf,
        table=DynamoQueueTable(clients.get("queues"), conf.queues_table),
        store=SqsMessageStore(clients.get("messages"), prefix=conf.backing_queue_prefix),
        payloads=S3PayloadStore(clients.get("payloads"), conf.payload_bucket),
        quarantine=S3QuarantineStore(clients.get("payloads"), conf.payload_bucket),
        key_service=key_service_process.client(conf, clients, metrics=metrics),
        targets=targets if targets is not None else LambdaTargets(clients.get("triggers")),
        metrics=metrics,
    )


_lock = threading.Lock()
_delivery: Delivery | None = None


def delivery() -> Delivery:
    """This process's delivery container, built from the environment on first use."""
    global _delivery
    with _lock:
        if _delivery is None:
            conf = settings_module.get()
            clients = Clients(boto3.session.Session(), conf.region, conf.aws_endpoint)
            _delivery = build(conf, clients, metrics=telemetry.get())
        return _delivery


def reset() -> None:
    global _delivery
    with _lock:
        _delivery = None


def serve(event: dict[str, Any], lambda_context: Any = None) -> dict[str, Any]:
    """The delivery Lambda: a mapping's batch in, its partial batch response out.

    Should the container not start, every record is reported failed: the batch stays in
    its queue for the next try, never lost."""
    with log_context(**lambda_ids(lambda_context)):
        try:
            found = delivery()
        except Exception as err:  # noqa: BLE001 - the mapping must get an answer
            log.error("delivery could not start: %s", type(err).__name__)
            records = event.get("Records") if isinstance(event, dict) else None
            ids = [r.get("messageId") for r in records or [] if isinstance(r, dict)]
            return lambda_event.batch_response([str(i) for i in ids if i])
        try:
            return found.handle(event)
        finally:
            telemetry.flush()
