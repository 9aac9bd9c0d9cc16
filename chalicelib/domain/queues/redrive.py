"""Dead-letter queues: the backing redrive, and which sealed messages open where.

The backing queue moves a message past ``maxReceiveCount`` to the dead-letter
queue's backing queue itself; the sealed message keeps its source queue in its
encryption context. So a dead-letter queue records, for good, every source that
ever redrove into it (queue id -> ARN, its provenance): what they moved there keeps
opening there whatever happens to them later, and nothing else does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from chalicelib import errors
from chalicelib.crypto.sealing import Binding
from chalicelib.domain.queues.attributes import parse_arn, redrive_allowed, redrive_error
from chalicelib.domain.queues.records import Queue, QueueRecords
from chalicelib.storage.errors import StorageError
from chalicelib.storage.ports import Change, MessageStore

log = logging.getLogger("sealq.queues")


class Redrive:
    """Redrive policies between one account's queues, over the records and backing store."""

    def __init__(self, records: QueueRecords, store: MessageStore) -> None:
        self._records = records
        self._store = store

    def sources_targeting(self, account: str, arn: str) -> list[Queue]:
        """The queues of ``account`` whose RedrivePolicy names ``arn`` now, in name order
        (ListDeadLetterSourceQueues; what a re-created dead-letter queue takes back)."""
        found: list[Queue] = []
        start: str | None = None
        while True:
            page, more = self._records.list_queues(account, "", 1000, start)
            found.extend(q for q in page if _redrive_target(q) == arn)
            if not more or not page:
                return found
            start = page[-1].name

    def point(self, source: Queue, target_backing_arn: str | None) -> None:
        """Point (or, with None, unpoint) a source's backing redrive; best effort.

        Unpointed, a source keeps the messages past maxReceiveCount rather than send
        them to a backing queue that is gone (where they would be lost).
        """
        policy = json.loads(source.attributes.get("RedrivePolicy") or "{}")
        redrive: dict[str, object] = (
            {"deadLetterTargetArn": target_backing_arn,
             "maxReceiveCount": policy.get("maxReceiveCount", 1)}
            if target_backing_arn else {}
        )
        try:
            self._store.set_attributes(source.backing_url, {}, redrive)
        except StorageError as err:
            log.error("could not %s the dead-letter redrive of %s: %s %s",
                      "re-point" if target_backing_arn else "suspend", source.arn,
                      type(err).__name__, err.code)

    def backing_policy(
        self, account: str, fifo: bool, attributes: Mapping[str, str],
        source: tuple[str, str],
    ) -> dict[str, object] | None:
        """The backing RedrivePolicy for a (normalized) sealq one: None unchanged, {} removed.

        The backing queue moves messages to the dead-letter queue's backing queue
        itself; the sealed message keeps its source queue in its context. Before
        anything can be moved, the dead-letter queue records ``source`` (queue id,
        ARN) as a provenance it accepts, for good (see :attr:`Queue.bindings`).
        """
        if "RedrivePolicy" not in attributes:
            return None
        value = attributes["RedrivePolicy"]
        if value == "":
            return {}
        policy = json.loads(value)
        parsed = parse_arn(policy["deadLetterTargetArn"])
        target = None
        if parsed is not None and parsed[0] == account:
            try:
                target = self._records.get_fresh(*parsed)
            except errors.SqsError:
                target = None
        if target is None:
            raise redrive_error(value, "Dead letter target does not exist.")
        if target.fifo != fifo:
            raise redrive_error(
                value, "Dead-letter target owner queue type must match the source queue type."
            )
        queue_id, arn = source
        if not redrive_allowed(target.attributes.get("RedriveAllowPolicy"), arn):
            raise redrive_error(
                value, "The dead-letter queue's RedriveAllowPolicy does not allow this source "
                       "queue."
            )
        if queue_id and target.record.sources.get(queue_id) != arn:
            self._records.change(target, lambda current: None
                         if current.record.sources.get(queue_id) == arn
                         else Change(add_sources={queue_id: arn}))
        return {"deadLetterTargetArn": target.record.backing_arn,
                "maxReceiveCount": policy["maxReceiveCount"]}

    def still_binds(self, queue: Queue, binding: Binding) -> bool:
        """Whether ``binding`` opens in ``queue`` by its record as stored now: a source
        added since this container cached the record shows only there."""
        if not binding.queue_id:
            return False
        try:
            fresh = self._records.get_fresh(queue.account, queue.name)
        except errors.SqsError:
            return False
        return fresh.backing_url == queue.backing_url and binding in fresh.bindings


def _redrive_target(queue: Queue) -> str | None:
    policy = queue.attributes.get("RedrivePolicy")
    if not policy:
        return None
    target = json.loads(policy).get("deadLetterTargetArn")
    return str(target) if target else None
