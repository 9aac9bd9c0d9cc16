"""The queue registry: names, attributes, tags and each queue's backing queue.

Records live behind the :class:`~chalicelib.storage.ports.QueueTable` port; the
backing queues behind the :class:`~chalicelib.storage.ports.MessageStore`. Every
value is validated before anything is written. Handlers cache records for
``cache_ttl`` seconds, so a change made through another container — a new
KmsMasterKeyId, say — takes effect within that time (invariant 7). Changes are
attribute-level and versioned: a writer holding a stale copy reads again and
retries, so no concurrent change is lost (invariant 12).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chalicelib import errors
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.crypto.sealing import Accept
from chalicelib.domain.messages.rules import validate_queue_name
from chalicelib.domain.queues.attributes import (
    ALL_READABLE,
    FIFO_CHOICES,
    INT_ATTRIBUTES,
    parse_arn,
    redrive_allowed,
    redrive_error,
    validate_attributes,
)
from chalicelib.storage.errors import Gone, StorageError
from chalicelib.storage.ports import (
    COUNT_ATTRIBUTES,
    MIRRORED_ATTRIBUTES,
    Change,
    MessageStore,
    QueueRecord,
    QueueTable,
)

log = logging.getLogger("sealq.queues")

MAX_TAGS = 50
# Attempts of a versioned change against records other containers keep changing.
_UPDATE_ATTEMPTS = 5


@dataclass(frozen=True)
class Queue:
    """A queue record with what the deployment adds: its ARN and the CMK that seals it."""

    record: QueueRecord
    arn: str
    default_cmk: str

    @property
    def account(self) -> str:
        return self.record.account

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def fifo(self) -> bool:
        return self.record.fifo

    @property
    def attributes(self) -> Mapping[str, str]:
        return self.record.attributes

    @property
    def tags(self) -> Mapping[str, str]:
        return self.record.tags

    @property
    def backing_url(self) -> str:
        return self.record.backing_url

    @property
    def queue_id(self) -> str:
        return self.record.queue_id

    @property
    def quarantine_id(self) -> str:
        return self.record.quarantine_id

    def int_attribute(self, name: str) -> int:
        return int(self.attributes.get(name, INT_ATTRIBUTES[name][2]))

    @property
    def cmk(self) -> str:
        """The CMK that seals this queue's messages: its own, else the service default."""
        return self.attributes.get("KmsMasterKeyId") or self.default_cmk

    def url(self, base: str) -> str:
        return f"{base}/{self.account}/{self.name}"


def _diff(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What to set and what to remove to turn ``old`` into ``new``."""
    return (
        {k: v for k, v in new.items() if old.get(k) != v},
        [k for k in old if k not in new],
    )


class KeyPolicy(Protocol):
    """Which CMKs an account may name as a queue's ``KmsMasterKeyId``."""

    def check(self, account: str, cmk: str) -> None:
        """Return when allowed ("" and the default always are), else raise the SQS
        error; a failure to find out propagates (the change is refused)."""
        ...


class Registry:
    """Queue records with a short-lived per-container cache."""

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
    ) -> None:
        self._table = table
        self._key_policy = key_policy
        self._store = store
        self._region = region
        self._default_cmk = default_cmk
        self._clock = clock  # wall clock: timestamps other containers read
        self._local = local_clock or clock  # the cache's own TTLs
        self._ttl = cache_ttl
        self._cache: TTLCache[tuple[str, str], Queue] = TTLCache(4096, self._local)

    def arn(self, account: str, name: str) -> str:
        return f"arn:aws:sqs:{self._region}:{account}:{name}"

    def _wrap(self, record: QueueRecord) -> Queue:
        return Queue(record, self.arn(record.account, record.name), self._default_cmk)

    # -- reading ------------------------------------------------------------------

    def get(self, account: str, name: str) -> Queue:
        """The queue, or QueueDoesNotExist."""

        def load() -> tuple[Queue, float]:
            record = self._table.get(account, name)
            if record is None:
                raise errors.queue_does_not_exist()
            return self._wrap(record), self._local.now() + self._ttl

        return self._cache.get_or_load((account, name), load)

    def get_fresh(self, account: str, name: str) -> Queue:
        self.forget(account, name)
        return self.get(account, name)

    def forget(self, account: str, name: str) -> None:
        """Drop a cached record (it was found changed or gone)."""
        self._cache.pop((account, name))

    def list_queues(
        self, account: str, prefix: str, limit: int, start_after: str | None
    ) -> tuple[list[Queue], bool]:
        """Queues of ``account`` whose name starts with ``prefix``, in name order."""
        records, more = self._table.list(account, prefix, limit, start_after)
        return [self._wrap(r) for r in records], more

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
            return self._same_or_conflict(self._wrap(existing), attributes)
        queue_id = secrets.token_hex(16)
        arn = self.arn(account, name)
        redrive = self._backing_redrive(account, fifo, attributes, (queue_id, arn))
        # Queues whose RedrivePolicy names this one (it was deleted and is back): their
        # dead letters come here again, and what they move here opens here.
        sources = self.sources_targeting(account, arn)
        backing_url, backing_arn = self._store.create_queue(fifo, attributes, redrive or None)
        now = int(self._clock.now())
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
                self._point_redrive(source, backing_arn)
        return self._wrap(record)

    def sources_targeting(self, account: str, arn: str) -> list[Queue]:
        """The queues of ``account`` whose RedrivePolicy names ``arn`` now, in name order
        (ListDeadLetterSourceQueues; what a re-created dead-letter queue takes back)."""
        found: list[Queue] = []
        start: str | None = None
        while True:
            page, more = self.list_queues(account, "", 1000, start)
            found.extend(q for q in page if _redrive_target(q) == arn)
            if not more or not page:
                return found
            start = page[-1].name

    def _point_redrive(self, source: Queue, target_backing_arn: str | None) -> None:
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
        self.forget(queue.account, queue.name)
        if not self._table.delete(queue.record):
            raise errors.queue_does_not_exist()
        for source in self.sources_targeting(queue.account, queue.arn):
            self._point_redrive(source, None)  # keep their dead letters until it is back
        try:
            self._store.delete_queue(queue.backing_url)
        except Gone:
            pass
        except StorageError as err:
            # The registry no longer points at it; its sealed messages expire with it.
            log.warning("backing queue of a deleted queue left behind: %s %s",
                        type(err).__name__, err.code)

    def purge(self, queue: Queue) -> None:
        self._store.purge(queue.backing_url)

    # -- changing -------------------------------------------------------------------

    def _change(self, queue: Queue, plan: Callable[[Queue], Change | None]) -> Queue:
        """Apply ``plan(current)`` as a versioned change; re-plan on a concurrent change."""
        current = queue
        for _ in range(_UPDATE_ATTEMPTS):
            change = plan(current)
            if change is None:
                return current
            if self._table.update(current.record, change):
                self.forget(queue.account, queue.name)
                return current
            current = self.get_fresh(queue.account, queue.name)
            if current.backing_url != queue.backing_url:
                raise errors.queue_does_not_exist()  # deleted and re-created meanwhile
        raise errors.request_throttled()

    def set_attributes(self, queue: Queue, raw_attributes: Mapping[str, str]) -> None:
        """Validate completely, write the registry, then the backing queue; a failure of
        the backing queue puts the registry back, so neither is half-changed."""
        raw = dict(raw_attributes)
        if queue.fifo and str(raw.get("FifoQueue", "")).lower() == "true":
            del raw["FifoQueue"]  # AWS: restating what the queue is changes nothing
        if "FifoQueue" in raw:
            raise errors.invalid_attribute_name("FifoQueue")
        attributes = validate_attributes(raw, fifo=queue.fifo, creating=False)
        self._key_policy.check(queue.account, attributes.get("KmsMasterKeyId", ""))
        redrive = self._backing_redrive(
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
            to_set, to_remove = _diff(current.attributes, merged)
            return Change(to_set, to_remove, modified=int(self._clock.now()))

        self._change(queue, plan)
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
            to_set, to_remove = _diff(current.attributes, before.attributes)
            undo = Change(to_set, to_remove, modified=before.modified)
            if not self._table.update(current.record, undo):
                raise StorageError("dynamodb", "ConditionalCheckFailedException")
        except (StorageError, errors.SqsError) as err:
            log.error("queue attributes could not be restored after a failed change: %s",
                      type(err).__name__)

    def edit_policy(self, queue: Queue, edit: Callable[[str], str]) -> None:
        """Replace the queue's Policy with ``edit(current policy)`` ("" removes it), as a
        versioned change: a concurrent edit is re-planned, never lost. ``edit`` raises
        the SQS error that refuses the change; its result is validated as a Policy."""

        def plan(current: Queue) -> Change | None:
            new = edit(current.attributes.get("Policy", ""))
            validate_attributes({"Policy": new}, fifo=current.fifo, creating=False)
            modified = int(self._clock.now())
            if new:
                return Change({"Policy": new}, modified=modified)
            return Change(remove_attributes=["Policy"], modified=modified)

        self._change(queue, plan)

    def tag(self, queue: Queue, tags: Mapping[str, str]) -> None:
        def plan(current: Queue) -> Change | None:
            if len({**current.tags, **tags}) > MAX_TAGS:
                raise errors.invalid_parameter_value(
                    f"Too many tags added for queue {current.name}."
                )
            return Change(set_tags=tags)

        self._change(queue, plan)

    def untag(self, queue: Queue, keys: Sequence[str]) -> None:
        def plan(current: Queue) -> Change | None:
            present = [k for k in dict.fromkeys(keys) if k in current.tags]
            return Change(remove_tags=present) if present else None

        self._change(queue, plan)

    # -- dead-letter queues ------------------------------------------------------------

    def _backing_redrive(
        self, account: str, fifo: bool, attributes: Mapping[str, str],
        source: tuple[str, str],
    ) -> dict[str, object] | None:
        """The backing RedrivePolicy for a (normalized) sealq one: None unchanged, {} removed.

        The backing queue moves messages to the dead-letter queue's backing queue
        itself; the sealed message keeps its source queue in its context. Before
        anything can be moved, the dead-letter queue records ``source`` (queue id,
        ARN) as a provenance it accepts, for good (see :meth:`accepts`).
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
                target = self.get_fresh(*parsed)
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
            self._change(target, lambda current: None
                         if current.record.sources.get(queue_id) == arn
                         else Change(add_sources={queue_id: arn}))
        return {"deadLetterTargetArn": target.record.backing_arn,
                "maxReceiveCount": policy["maxReceiveCount"]}

    def accepts(self, queue: Queue) -> Accept:
        """Which sealed messages may open in ``queue``: its own (this incarnation), and
        those of every queue that ever redrove into it (its recorded provenance)."""

        def accept(arn: str, queue_id: str) -> bool:
            if arn == queue.arn and queue_id == queue.queue_id:
                return True
            if not queue_id:
                return False
            if queue.record.sources.get(queue_id) == arn:
                return True
            # A source added since this container cached the record: read it again.
            try:
                fresh = self.get_fresh(queue.account, queue.name)
            except errors.SqsError:
                return False
            return fresh.backing_url == queue.backing_url and \
                fresh.record.sources.get(queue_id) == arn

        return accept


def _redrive_target(queue: Queue) -> str | None:
    policy = queue.attributes.get("RedrivePolicy")
    if not policy:
        return None
    target = json.loads(policy).get("deadLetterTargetArn")
    return str(target) if target else None


def read_attributes(
    queue: Queue, names: list[str], counts: Callable[[], Mapping[str, str]]
) -> dict[str, str]:
    """GetQueueAttributes: the requested names (or All) with SQS's values."""
    wanted = set(ALL_READABLE) if "All" in names else set(names)
    for name in wanted:
        if name not in ALL_READABLE:
            raise errors.invalid_attribute_name(name)
    values: dict[str, str] = {"QueueArn": queue.arn}
    values["CreatedTimestamp"] = str(queue.record.created)
    values["LastModifiedTimestamp"] = str(queue.record.modified)
    for name, (_, _, default) in INT_ATTRIBUTES.items():
        values[name] = queue.attributes.get(name, str(default))
    if queue.attributes.get("KmsMasterKeyId"):
        values["KmsMasterKeyId"] = queue.attributes["KmsMasterKeyId"]
        values["SqsManagedSseEnabled"] = "false"
    else:
        values["SqsManagedSseEnabled"] = "true"
    for name in ("Policy", "RedrivePolicy", "RedriveAllowPolicy"):
        if name in queue.attributes:
            values[name] = queue.attributes[name]
    if queue.fifo:
        values["FifoQueue"] = "true"
        values["ContentBasedDeduplication"] = queue.attributes.get(
            "ContentBasedDeduplication", "false"
        )
        for choice, (_, chosen) in FIFO_CHOICES.items():
            values[choice] = queue.attributes.get(choice, chosen)
    if wanted & set(COUNT_ATTRIBUTES):
        values.update(counts())
    return {k: v for k, v in values.items() if k in wanted}
