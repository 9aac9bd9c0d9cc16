"""The storage ports the domain talks to: queue table, message store, payload store,
quarantine, move tasks, accounts.

Each has an AWS adapter (DynamoDB, SQS, S3) and an in-memory implementation
(:mod:`tests.memory`). Every method either returns or raises a
:class:`chalicelib.storage.errors.StorageError`; no botocore type crosses a port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.storage.errors import StorageError

MAX_BATCH_BYTES = 1024 * 1024
MAX_BATCH_ENTRIES = 10
COUNT_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
def send_batches[T](items: Sequence[T], size: Callable[[T], int]) -> list[list[T]]:
    """``items`` in order, grouped to fit one backing SendMessageBatch each: at most
    10 entries and 1 MiB of stored bodies (``size`` of each item)."""
    batches: list[list[T]] = []
    total = 0
    for item in items:
        length = size(item)
        if not batches or len(batches[-1]) == MAX_BATCH_ENTRIES or (
                total + length > MAX_BATCH_BYTES):
            batches.append([])
            total = 0
        batches[-1].append(item)
        total += length
    return batches


# Attributes of a sealq queue that its backing queue mirrors.
MIRRORED_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
)


@dataclass(frozen=True)
class QueueRecord:
    """A queue as the registry stores it. ``version`` grows with every change."""

    account: str
    name: str
    fifo: bool
    attributes: Mapping[str, str]
    backing_url: str
    backing_arn: str
    created: int
    modified: int
    tags: Mapping[str, str] = field(default_factory=dict)
    version: int = 0
    # The incarnation: new for every CreateQueue, bound into each sealed message.
    queue_id: str = ""
    # Dead-letter provenance: queue id -> ARN of every queue that ever redrove here,
    # so what they moved here keeps opening whatever happens to them later.
    sources: Mapping[str, str] = field(default_factory=dict)
    # The queue's trigger (chalicelib.domain.triggers.model.Trigger as JSON); "" for none.
    trigger: str = ""

    @property
    def quarantine_id(self) -> str:
        """Where the queue's quarantined messages are kept (per incarnation)."""
        return self.queue_id or f"{self.account}-{self.name}"


@dataclass(frozen=True)
class Change:
    """An attribute-level change of one queue record (never a whole-item rewrite)."""

    set_attributes: Mapping[str, str] = field(default_factory=dict)
    remove_attributes: Iterable[str] = ()
    set_tags: Mapping[str, str] = field(default_factory=dict)
    remove_tags: Iterable[str] = ()
    add_sources: Mapping[str, str] = field(default_factory=dict)
    modified: int | None = None
    # The trigger's JSON to store; "" removes it; None leaves it as it is.
    trigger: str | None = None


class QueueTable(Protocol):
    def get(self, account: str, name: str) -> QueueRecord | None:
        """The record, read consistently; None when there is none."""
        ...

    def create(self, record: QueueRecord) -> bool:
        """Store a new record; False when the name is taken."""
        ...

    def update(self, record: QueueRecord, change: Change) -> bool:
        """Apply ``change`` only if the stored record is still ``record`` (same backing
        queue and version); False when it is gone or changed meanwhile."""
        ...

    def delete(self, record: QueueRecord) -> bool:
        """Remove the record only while it is this queue (same backing queue)."""
        ...

    def list(
        self, account: str, prefix: str, limit: int, start_after: str | None
    ) -> tuple[list[QueueRecord], bool]:
        """Up to ``limit`` records of ``account`` by name, and whether more follow."""
        ...

    def locate(self, backing_arn: str) -> tuple[str, str] | None:
        """(account, name) of the queue whose backing queue is ``backing_arn``, if
        indexed (a trigger's delivery finds its queue so)."""
        ...

    def index(self, backing_arn: str, account: str, name: str) -> None:
        """Make the queue findable by its backing queue's ARN."""
        ...

    def unindex(self, backing_arn: str) -> None:
        """Forget the backing queue's index entry (no error when there is none)."""
        ...


@dataclass(frozen=True)
class Outgoing:
    entry_id: str
    body: str
    delay: int | None = None
    group_id: str | None = None
    dedup_id: str | None = None


@dataclass(frozen=True)
class Accepted:
    """What the backing store says of a message it took."""

    message_id: str
    sequence_number: str | None = None


@dataclass(frozen=True)
class BackingMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, str]


class MessageStore(Protocol):
    """The backing SQS queues, holding only sealed messages."""

    def create_queue(
        self, fifo: bool, attributes: Mapping[str, str], redrive: Mapping[str, object] | None
    ) -> tuple[str, str]:
        """A new backing queue; (url, arn)."""
        ...

    def set_attributes(
        self, url: str, attributes: Mapping[str, str], redrive: Mapping[str, object] | None
    ) -> None:
        """Mirror settable attributes; ``redrive`` {} removes the backing RedrivePolicy."""
        ...

    def get_attributes(self, url: str, names: Iterable[str]) -> dict[str, str]: ...

    def delete_queue(self, url: str) -> None: ...

    def purge(self, url: str) -> None: ...

    def send_batch(
        self, url: str, entries: list[Outgoing]
    ) -> tuple[dict[str, Accepted], dict[str, StorageError]]:
        """Up to 10 entries; (sent: entry id -> what was accepted, refused: entry id ->
        why, as a storage error)."""
        ...

    def receive(
        self,
        url: str,
        *,
        max_messages: int,
        visibility_timeout: int | None,
        wait_seconds: int | None,
        attempt_id: str | None,
    ) -> list[BackingMessage]: ...

    def delete_batch(self, url: str, handles: Mapping[str, str]) -> dict[str, StorageError]:
        """Delete by backing receipt handle; id -> why, of the entries that failed."""
        ...

    def change_visibility(self, url: str, receipt_handle: str, timeout: int) -> None: ...


class QuarantineStore(Protocol):
    """Messages that failed their integrity checks, kept (sealed, as stored) for the
    operator: out of their queue, never delivered, counted and purgeable."""

    def put(self, queue_id: str, message_id: str, record: bytes) -> None: ...

    def list(self, queue_id: str) -> list[str]:
        """The message ids quarantined for the queue."""
        ...

    def purge(self, queue_id: str) -> int:
        """Remove every quarantined message of the queue; how many there were."""
        ...


class PayloadStore(Protocol):
    """Sealed bodies too large to sit inline in a backing message."""

    def put(self, sealed: bytes) -> tuple[str, str]:
        """Store; returns (bucket, key)."""
        ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def delete(self, bucket: str, key: str) -> None: ...


# -- message move tasks ----------------------------------------------------------------

RUNNING = "RUNNING"
TERMINAL_STATUSES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass(frozen=True)
class MoveTask:
    """A message move task as stored. CANCELLING is RUNNING with ``cancel_requested``.

    ``pending`` holds the source's backing message ids already accepted by the
    destination but not yet known deleted from the source: a resumed worker deletes
    those instead of sending them again. ``version`` grows with every progress write.
    """

    task_id: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started: int  # epoch milliseconds
    to_move: int
    status: str = RUNNING
    moved: int = 0
    failure: str | None = None
    cancel_requested: bool = False
    pending: tuple[str, ...] = ()
    version: int = 0
    # Epoch seconds of the last progress write: a RUNNING task whose worker died shows
    # as one whose heartbeat stopped.
    heartbeat: int = 0


class MoveTaskStore(Protocol):
    """Message move tasks by source queue ARN; at most one active task per source."""

    def start(self, task: MoveTask) -> bool:
        """Store a new RUNNING task; False when the source has an active one already."""
        ...

    def get(self, source_arn: str, task_id: str) -> MoveTask | None: ...

    def list(self, source_arn: str, limit: int) -> list[MoveTask]:
        """The source's tasks, most recently started first."""
        ...

    def save(self, task: MoveTask) -> MoveTask | None:
        """Write status, counts, failure, pending and heartbeat if the stored version is
        ``task.version``; the stored task afterwards (version + 1, with any cancel
        requested meanwhile), or None when another writer got there first. A terminal
        status frees the source for a new task."""
        ...

    def request_cancel(self, source_arn: str, task_id: str) -> MoveTask | None:
        """Mark a RUNNING task for cancelling; the stored task (changed or not), None
        when there is no such task."""
        ...


# -- triggers -------------------------------------------------------------------------------


class EventSourceMappings(Protocol):
    """The Lambda event source mappings that feed triggers' deliveries (deployed stacks)."""

    def create(self, backing_arn: str, trigger: Any) -> str:
        """A mapping on the backing queue with the trigger's batch settings; its id."""
        ...

    def update(self, mapping: str, trigger: Any) -> None: ...

    def delete(self, mapping: str) -> None:
        """Remove a mapping (one already gone is no error)."""
        ...


# -- accounts and access keys ------------------------------------------------------------

ACTIVE = "Active"
INACTIVE = "Inactive"


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    created_at: float
    kms_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccessKey:
    """An access key as stored: ``sealed_secret`` is the key service's envelope."""

    access_key_id: str
    account: str
    status: str
    created_at: float
    sealed_secret: bytes = field(repr=False)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


class AccountStore(Protocol):
    """Where accounts and access keys live (DynamoDB, or memory in tests)."""

    def put_account(self, account: Account) -> bool:
        """Store a new account; False when its id is taken."""
        ...

    def get_account(self, account_id: str) -> Account | None: ...

    def list_accounts(self) -> list[Account]: ...

    def set_kms_key(self, account_id: str, cmk: str, allowed: bool) -> bool:
        """Allow or disallow a CMK for an account; False when there is no such account."""
        ...

    def put_key(self, key: AccessKey) -> bool:
        """Store a new access key; False when its id is taken."""
        ...

    def get_key(self, access_key_id: str) -> AccessKey | None: ...

    def list_keys(self, account_id: str) -> list[AccessKey]: ...

    def set_key_status(self, access_key_id: str, status: str) -> bool:
        """False when there is no such key."""
        ...

    def delete_key(self, access_key_id: str) -> bool:
        """False when there was no such key."""
        ...
