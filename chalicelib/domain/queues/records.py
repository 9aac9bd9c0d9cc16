"""Queue records as a handler sees them: read through a short-lived cache, changed by version.

Records live behind the :class:`~chalicelib.storage.ports.QueueTable` port. A
handler caches each for ``cache_ttl`` seconds, so a change made through another
container (a new KmsMasterKeyId, say) takes effect within that time (invariant 7).
Changes are attribute-level and versioned: a writer holding a stale copy reads
again and re-plans, so no concurrent change is lost (invariant 12).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chalicelib import errors
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.crypto.sealing import Binding
from chalicelib.domain.queues.attributes import INT_ATTRIBUTES
from chalicelib.storage.ports import Change, QueueRecord, QueueTable

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

    @property
    def bindings(self) -> frozenset[Binding]:
        """Whose sealed messages open here: this incarnation's own, and those of every
        queue that ever redrove into it (its recorded dead-letter provenance)."""
        return frozenset({Binding(self.arn, self.queue_id)} | {
            Binding(arn, queue_id) for queue_id, arn in self.record.sources.items()})


def diff(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What to set and what to remove to turn ``old`` into ``new``."""
    return (
        {k: v for k, v in new.items() if old.get(k) != v},
        [k for k in old if k not in new],
    )


class QueueRecords:
    """Queue records with a per-container cache, and versioned changes of them."""

    def __init__(
        self, table: QueueTable, *, region: str, default_cmk: str, clock: Clock,
        cache_ttl: float, local_clock: Clock | None = None,
    ) -> None:
        self._table = table
        self._region = region
        self._default_cmk = default_cmk
        self._clock = clock  # wall clock: timestamps other containers read
        self._local = local_clock or clock  # the cache's own TTLs
        self._ttl = cache_ttl
        self._cache: TTLCache[tuple[str, str], Queue] = TTLCache(4096, self._local)
        # Which queue a backing queue is (a trigger's batch names only that).
        self._located: TTLCache[str, tuple[str, str]] = TTLCache(1024, self._local)

    def arn(self, account: str, name: str) -> str:
        return f"arn:aws:sqs:{self._region}:{account}:{name}"

    def wrap(self, record: QueueRecord) -> Queue:
        return Queue(record, self.arn(record.account, record.name), self._default_cmk)

    def get(self, account: str, name: str) -> Queue:
        """The queue, or QueueDoesNotExist."""

        def load() -> tuple[Queue, float]:
            record = self._table.get(account, name)
            if record is None:
                raise errors.queue_does_not_exist()
            return self.wrap(record), self._local.now() + self._ttl

        return self._cache.get_or_load((account, name), load)

    def get_fresh(self, account: str, name: str) -> Queue:
        self.forget(account, name)
        return self.get(account, name)

    def by_backing_arn(self, backing_arn: str) -> Queue:
        """The queue whose backing queue is ``backing_arn``, or QueueDoesNotExist. Which
        queue that is is read at most once per ``cache_ttl``; a record found naming
        another backing queue (deleted and re-created since) is read again."""

        def locate() -> tuple[tuple[str, str], float]:
            found = self._table.locate(backing_arn)
            if found is None:
                raise errors.queue_does_not_exist()
            return found, self._local.now() + self._ttl

        named = self._located.get_or_load(backing_arn, locate)
        queue = self.get(*named)
        if queue.record.backing_arn != backing_arn:
            queue = self.get_fresh(*named)
            if queue.record.backing_arn != backing_arn:
                raise errors.queue_does_not_exist()
        return queue

    def forget(self, account: str, name: str) -> None:
        """Drop a cached record (it was found changed or gone)."""
        self._cache.pop((account, name))

    def list_queues(
        self, account: str, prefix: str, limit: int, start_after: str | None
    ) -> tuple[list[Queue], bool]:
        """Queues of ``account`` whose name starts with ``prefix``, in name order."""
        records, more = self._table.list(account, prefix, limit, start_after)
        return [self.wrap(r) for r in records], more

    def change(self, queue: Queue, plan: Callable[[Queue], Change | None]) -> Queue:
        """Apply ``plan(current)`` as a versioned change; re-plan on a concurrent change.
        Returns the record the change was applied to."""
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

    def now(self) -> int:
        """Wall-clock seconds, as records store them."""
        return int(self._clock.now())
