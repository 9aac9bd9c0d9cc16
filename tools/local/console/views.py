"""What the console shows of accounts and queues, read straight from the stores.

The admin plane's view: the registry table, the backing queues' counts, the
quarantine bucket and the move tasks, through sealq's own storage adapters (the ports
a handler container uses), never through the SQS API, so the console's reads are
nobody's requests and change nothing. It shows names, settings and counts, never a
message body, an attribute value, a key or a secret; a trigger's filter patterns are
counted, not shown (they may quote values).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chalicelib.clock import SYSTEM_CLOCK
from chalicelib.domain.queues.attributes import parse_arn
from chalicelib.domain.queues.records import Queue, QueueRecords
from chalicelib.domain.triggers.model import Trigger
from chalicelib.handler.container import Ports
from chalicelib.settings import Settings
from chalicelib.storage.errors import StorageError
from chalicelib.storage.ports import COUNT_ATTRIBUTES, RUNNING, QueueRecord

REUSE_PERIOD = "KmsDataKeyReusePeriodSeconds"
# Queues listed per account (the page is for a local stack, not a fleet).
MAX_QUEUES = 1000


@dataclass(frozen=True)
class Stores:
    """The stores the console reads, and how queue records become queues."""

    ports: Ports
    records: QueueRecords
    conf: Settings

    @classmethod
    def of(cls, conf: Settings, ports: Ports) -> Stores:
        records = QueueRecords(ports.queues, region=conf.region, default_cmk=conf.default_kms_key,
                               clock=SYSTEM_CLOCK, cache_ttl=0)
        return cls(ports, records, conf)

    def queues(self, account: str) -> Iterator[Queue]:
        start: str | None = None
        listed = 0
        while listed < MAX_QUEUES:
            page, more = self.ports.queues.list(account, "", 100, start)
            for record in page:
                yield self.records.wrap(record)
            listed += len(page)
            if not more or not page:
                return
            start = page[-1].name

    def queue(self, account: str, name: str) -> Queue | None:
        record = self.ports.queues.get(account, name)
        return self.records.wrap(record) if record is not None else None


def _dead_letter_target(queue: Queue) -> tuple[str, int | None] | None:
    raw = queue.attributes.get("RedrivePolicy")
    if not raw:
        return None
    try:
        policy = json.loads(raw)
        target = str(policy["deadLetterTargetArn"])
    except (ValueError, KeyError, TypeError):
        return None
    count = policy.get("maxReceiveCount")
    return target, int(count) if str(count).isdigit() else None


def _named(arn: str) -> dict[str, str]:
    named = parse_arn(arn)
    account, name = named if named is not None else ("", arn)
    return {"arn": arn, "account": account, "name": name}


def _trigger(record: QueueRecord) -> dict[str, Any] | None:
    if not record.trigger:
        return None
    try:
        trigger = Trigger.from_json(record.trigger)
    except (ValueError, TypeError, KeyError):
        return {"function": "?", "enabled": False, "unreadable": True}
    return {
        "function": trigger.function, "enabled": trigger.enabled,
        "batchSize": trigger.batch_size, "batchingWindow": trigger.batching_window,
        "reportBatchItemFailures": trigger.report_batch_item_failures,
        "maximumConcurrency": trigger.maximum_concurrency, "filters": len(trigger.filters),
        "local": trigger.local,
    }


def _counts(stores: Stores, queue: Queue) -> dict[str, int | None]:
    names = {"ApproximateNumberOfMessages": "visible",
             "ApproximateNumberOfMessagesNotVisible": "inFlight",
             "ApproximateNumberOfMessagesDelayed": "delayed"}
    try:
        found = stores.ports.messages.get_attributes(queue.backing_url, COUNT_ATTRIBUTES)
    except StorageError:
        return dict.fromkeys(names.values())
    return {label: int(found.get(name, 0)) for name, label in names.items()}


def _quarantined(stores: Stores, queue: Queue) -> int | None:
    try:
        return len(stores.ports.quarantine.list(queue.quarantine_id))
    except StorageError:
        return None


def _moves_running(stores: Stores, queue: Queue) -> int | None:
    try:
        return sum(1 for t in stores.ports.tasks.list(queue.arn, 100) if t.status == RUNNING)
    except StorageError:
        return None


def queue_view(stores: Stores, queue: Queue, sources: list[Queue]) -> dict[str, Any]:
    """One queue as the console lists it."""
    target = _dead_letter_target(queue)
    own_cmk = queue.attributes.get("KmsMasterKeyId", "")
    return {
        "account": queue.account,
        "name": queue.name,
        "arn": queue.arn,
        "type": "FIFO" if queue.fifo else "standard",
        "cmk": queue.cmk,
        "cmkIsDefault": not own_cmk,
        "reusePeriod": queue.int_attribute(REUSE_PERIOD),
        **_counts(stores, queue),
        "deadLetterQueue": ({**_named(target[0]), "maxReceiveCount": target[1]}
                            if target else None),
        "sources": [_named(q.arn) for q in sources],
        "quarantined": _quarantined(stores, queue),
        "moveTasksRunning": _moves_running(stores, queue),
        "trigger": _trigger(queue.record),
        "created": queue.record.created,
    }


def overview(stores: Stores) -> dict[str, Any]:
    """Every account, each with its queues (``/console/api/queues``)."""
    accounts = []
    for account in sorted(stores.ports.accounts.list_accounts(), key=lambda a: a.account_id):
        queues = list(stores.queues(account.account_id))
        targets = {q.arn: _dead_letter_target(q) for q in queues}
        views = [queue_view(stores, q, [s for s in queues
                                        if (targets[s.arn] or ("",))[0] == q.arn])
                 for q in queues]
        accounts.append({"account": account.account_id, "name": account.name,
                         "allowedKeys": len(account.kms_keys), "queues": views})
    return {"region": stores.conf.region, "defaultCmk": stores.conf.default_kms_key,
            "accounts": accounts}
