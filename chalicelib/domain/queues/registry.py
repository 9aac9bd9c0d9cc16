"""The queue registry: creating, changing and deleting queues and their backing queues.

Every value is validated before anything is written; a change whose backing half
fails is put back, so neither the record nor the backing queue is half-changed.
Reading records, the cache and versioned changes are :mod:`.records`'; dead-letter
redrive and provenance are :mod:`.redrive`'s.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from chalicelib import errors
from chalicelib.clock import Clock
from chalicelib.domain.queues.attributes import FIFO_CHOICES, INT_ATTRIBUTES, validate_attributes
from chalicelib.domain.queues.records import Queue, QueueRecords, diff
from chalicelib.domain.queues.redrive import Redrive
from chalicelib.domain.queues.rules import MAX_TAGS, validate_queue_name
from chalicelib.domain.triggers.model import Trigger
from chalicelib.storage.errors import Gone, StorageError
from chalicelib.storage.ports import (
    COUNT_ATTRIBUTES,
    MIRRORED_ATTRIBUTES,
    Change,
    EventSourceMappings,
    MessageStore,
    QueueRecord,
    QueueTable,
)

log = logging.getLogger("sealq.queues")


class KeyPolicy(Protocol):
    """Which CMKs an account may name as a queue's ``KmsMasterKeyId``."""

    def check(self, account: str, cmk: str) -> None:
        """Return when allowed ("" and the default always are), else raise the SQS
        error; a failure to find out propagates (the change is refused)."""
        ...


class Registry(QueueRecords):
    """Queue records (read through the cache) and every change of a queue."""

    def __init__(
        self,
        table: QueueTable,
        store: MessageStore,
        *,
        region: str,
        default_cmk: str,
        clock: Clock,
        cache_ttl: float,
        key_policy: KeyPolicy,
        local_clock: Clock | None = None,
        mappings: EventSourceMappings | None = None,
    ) -> None:
        super().__init__(table, region=region, default_cmk=default_cmk, clock=clock,
                         cache_ttl=cache_ttl, local_clock=local_clock)
        self._store = store
        self._key_policy = key_policy
        self._mappings = mappings  # triggers' event source mappings (deployed stacks)
        self.redrive = Redrive(self, store)

    def counts(self, queue: Queue) -> dict[str, str]:
        return self._store.get_attributes(queue.backing_url, COUNT_ATTRIBUTES)

    # -- creating and deleting ------------------------------------------------------

    def create(
        self, account: str, name: str, raw_attributes: Mapping[str, str],
        tags: Mapping[str, str],
    ) -> Queue:
        """Create the queue, or return it when it exists with the same attributes.

        ``tags`` must be validated already. Nothing is left behind on failure.
        """
        fifo_flag = raw_attributes.get("FifoQueue", "false").lower()
        if fifo_flag not in ("true", "false"):
            raise errors.invalid_attribute_value(
                "FifoQueue", "Invalid value for the parameter FifoQueue."
            )
        fifo = fifo_flag == "true"
        if "FifoQueue" in raw_attributes and not fifo:
            raise errors.invalid_attribute_name("FifoQueue")  # AWS: only a FIFO queue names it
        if name.endswith(".fifo") and "FifoQueue" not in raw_attributes:
            raise errors.invalid_parameter_value(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                "or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
        validate_queue_name(name, fifo)
        attributes = validate_attributes(dict(raw_attributes), fifo=fifo, creating=True)
        for empty in [k for k, v in attributes.items() if v == ""]:
            del attributes[empty]  # "" means "not set" (RedrivePolicy, Policy, KmsMasterKeyId)
        self._key_policy.check(account, attributes.get("KmsMasterKeyId", ""))
        existing = self._table.get(account, name)
        if existing is not None:
            return self._same_or_conflict(self.wrap(existing), attributes)
        queue_id = secrets.token_hex(16)
        arn = self.arn(account, name)
        redrive = self.redrive.backing_policy(account, fifo, attributes, (queue_id, arn))
        # Queues whose RedrivePolicy names this one (it was deleted and is back): their
        # dead letters come here again, and what they move here opens here.
        sources = self.redrive.sources_targeting(account, arn)
        backing_url, backing_arn = self._store.create_queue(fifo, attributes, redrive or None)
        now = self.now()
        record = QueueRecord(
            account, name, fifo, attributes, backing_url, backing_arn, now, now, dict(tags), 1,
            queue_id=queue_id,
            sources={s.queue_id: s.arn for s in sources if s.fifo == fifo},
        )
        try:
            created = self._table.create(record)
        except StorageError:
            self._drop_backing(backing_url)
            raise
        if not created:
            self._drop_backing(backing_url)  # lost a race: leave nothing behind
            return self._same_or_conflict(self.get_fresh(account, name), attributes)
        for source in sources:
            if source.fifo == fifo:
                self.redrive.point(source, backing_arn)
        return self.wrap(record)

    def _drop_backing(self, url: str) -> None:
        try:
            self._store.delete_queue(url)
        except StorageError as err:
            log.warning("could not remove an unused backing queue: %s %s",
                        type(err).__name__, err.code)

    def _same_or_conflict(self, existing: Queue, attributes: Mapping[str, str]) -> Queue:
        for key, value in attributes.items():
            current = existing.attributes.get(key)
            if current is None and key in INT_ATTRIBUTES:
                current = str(INT_ATTRIBUTES[key][2])
            if current is None and key in FIFO_CHOICES:
                current = FIFO_CHOICES[key][1]
            if current != value:
                raise errors.queue_name_exists(key)
        return existing

    def delete(self, queue: Queue) -> None:
        """Remove the record first, then the backing queue: no window where a half-queue shows."""
        queue = self.get_fresh(queue.account, queue.name)  # its trigger as stored now
        self.forget(queue.account, queue.name)
        if not self._table.delete(queue.record):
            raise errors.queue_does_not_exist()
        for source in self.redrive.sources_targeting(queue.account, queue.arn):
            self.redrive.point(source, None)  # keep their dead letters until it is back
        if queue.record.trigger:
            self._drop_trigger(queue)
        try:
            self._store.delete_queue(queue.backing_url)
        except Gone:
            pass
        except StorageError as err:
            # The registry no longer points at it; its sealed messages expire with it.
            log.warning("backing queue of a deleted queue left behind: %s %s",
                        type(err).__name__, err.code)

    def _drop_trigger(self, queue: Queue) -> None:
        """A deleted queue's trigger goes with it: its record went, its mapping and its
        index entry go now (best effort: a mapping left behind only finds no queue)."""
        mapping = Trigger.from_json(queue.record.trigger).mapping
        try:
            if mapping and self._mappings is not None:
                self._mappings.delete(mapping)
            self._table.unindex(queue.record.backing_arn)
        except StorageError as err:
            log.error("trigger of a deleted queue left behind: %s %s",
                      type(err).__name__, err.code)

    def purge(self, queue: Queue) -> None:
        self._store.purge(queue.backing_url)

    # -- changing -------------------------------------------------------------------

    def set_attributes(self, queue: Queue, raw_attributes: Mapping[str, str]) -> None:
        """Validate completely, write the registry, then the backing queue; a failure of
        the backing queue puts the registry back, so neither is half-changed."""
        raw = dict(raw_attributes)
        if queue.fifo and str(raw.get("FifoQueue", "")).lower() == "true":
            del raw["FifoQueue"]  # AWS: restating what the queue is changes nothing
        if "FifoQueue" in raw and queue.fifo:
            reason = (" Reason: Modifying queue type is not supported."
                      if str(raw["FifoQueue"]).lower() == "false" else "")
            raise errors.invalid_attribute_value(
                "FifoQueue", f"Invalid value for the parameter FifoQueue.{reason}")
        if "FifoQueue" in raw:
            raise errors.invalid_attribute_name("FifoQueue")
        attributes = validate_attributes(raw, fifo=queue.fifo, creating=False)
        self._key_policy.check(queue.account, attributes.get("KmsMasterKeyId", ""))
        redrive = self.redrive.backing_policy(
            queue.account, queue.fifo, attributes, (queue.queue_id, queue.arn)
        )
        # The record the change was planned on: what a failed backing half restores.
        before: list[QueueRecord] = []

        def plan(current: Queue) -> Change | None:
            merged = {**current.attributes, **attributes}
            if current.attributes.get("KmsMasterKeyId") and "SqsManagedSseEnabled" in attributes:
                if attributes["SqsManagedSseEnabled"] == "true":
                    merged.pop("KmsMasterKeyId")
            if "KmsMasterKeyId" in attributes:
                merged.pop("SqsManagedSseEnabled", None)
            merged = {k: v for k, v in merged.items() if v != ""}
            validate_attributes(merged, fifo=current.fifo, creating=False)
            before[:] = [current.record]
            to_set, to_remove = diff(current.attributes, merged)
            return Change(to_set, to_remove, modified=self.now())

        self.change(queue, plan)
        backing_change = {k: v for k, v in attributes.items() if k in MIRRORED_ATTRIBUTES}
        if not backing_change and redrive is None:
            return
        try:
            self._store.set_attributes(queue.backing_url, backing_change, redrive)
        except StorageError:
            self._restore(queue, before[0])
            raise

    def _restore(self, queue: Queue, before: QueueRecord) -> None:
        """Put the attributes back as they were before a change whose backing half failed.

        The modification time goes back too: LastModifiedTimestamp must not report
        a change the client was told failed. (The version moves on: it is the lock.)
        """
        try:
            current = self.get_fresh(queue.account, queue.name)
            to_set, to_remove = diff(current.attributes, before.attributes)
            undo = Change(to_set, to_remove, modified=before.modified)
            restored = self._table.update(current.record, undo)
        except (StorageError, errors.SqsError) as err:
            restored, why = False, type(err).__name__
        else:
            why = "the queue changed meanwhile"
        if not restored:
            log.error("queue attributes could not be restored after a failed change: %s", why)

    def edit_policy(self, queue: Queue, edit: Callable[[str], str]) -> None:
        """Replace the queue's Policy with ``edit(current policy)`` ("" removes it), as a
        versioned change: a concurrent edit is re-planned, never lost. ``edit`` raises
        the SQS error that refuses the change; its result is validated as a Policy."""

        def plan(current: Queue) -> Change | None:
            new = edit(current.attributes.get("Policy", ""))
            validate_attributes({"Policy": new}, fifo=current.fifo, creating=False)
            modified = self.now()
            if new:
                return Change({"Policy": new}, modified=modified)
            return Change(remove_attributes=["Policy"], modified=modified)

        self.change(queue, plan)

    def tag(self, queue: Queue, tags: Mapping[str, str]) -> None:
        def plan(current: Queue) -> Change | None:
            if len({**current.tags, **tags}) > MAX_TAGS:
                raise errors.invalid_parameter_value(
                    f"Too many tags added for queue {current.name}."
                )
            return Change(set_tags=tags)

        self.change(queue, plan)

    def untag(self, queue: Queue, keys: Sequence[str]) -> None:
        def plan(current: Queue) -> Change | None:
            present = [k for k in dict.fromkeys(keys) if k in current.tags]
            return Change(remove_tags=present) if present else None

        self.change(queue, plan)
