"""In-memory implementations of the storage ports and of the key service.

For fast tests of the message and action logic: same contracts as the AWS
adapters (``tests/functional/storage/test_port_contracts.py`` runs one suite
against both), no moto, no network. Thread-safe, driven by an injected clock; a
long poll returns at once. Never used in a deployment: nothing here is durable or
encrypted under KMS. ``Memory`` is a handler container over them.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypedDict, Unpack

from chalicelib import settings
from chalicelib.clock import Clock
from chalicelib.domain.movetasks.tasks import Dispatch
from chalicelib.handler import container
from chalicelib.handler.container import Ports
from chalicelib.keyservice.api import DataKey, KeyServiceError, key_identity
from chalicelib.observability.metrics import Metrics
from chalicelib.storage.errors import Gone, InvalidReceipt, NotInflight, StorageError
from chalicelib.storage.ports import (
    COUNT_ATTRIBUTES,
    MIRRORED_ATTRIBUTES,
    RUNNING,
    Accepted,
    AccessKey,
    Account,
    BackingMessage,
    Change,
    MoveTask,
    Outgoing,
    QueueRecord,
)
from tests.harness import install_test_key, sqs_client

REGION = "us-east-1"
ACCOUNT = "000000000000"


class MemoryQueueTable:
    """The queue table as a dict; conditional semantics as the DynamoDB adapter's."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], QueueRecord] = {}
        self._index: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def locate(self, backing_arn: str) -> tuple[str, str] | None:
        with self._lock:
            return self._index.get(backing_arn)

    def index(self, backing_arn: str, account: str, name: str) -> None:
        with self._lock:
            self._index[backing_arn] = (account, name)

    def unindex(self, backing_arn: str) -> None:
        with self._lock:
            self._index.pop(backing_arn, None)

    def get(self, account: str, name: str) -> QueueRecord | None:
        with self._lock:
            return self._records.get((account, name))

    def create(self, record: QueueRecord) -> bool:
        with self._lock:
            if (record.account, record.name) in self._records:
                return False
            self._records[(record.account, record.name)] = record
            return True

    def update(self, record: QueueRecord, change: Change) -> bool:
        key = (record.account, record.name)
        with self._lock:
            current = self._records.get(key)
            if (
                current is None
                or current.backing_url != record.backing_url
                or current.version != record.version
            ):
                return False
            attributes = {**current.attributes, **change.set_attributes}
            tags = {**current.tags, **change.set_tags}
            for name in change.remove_attributes:
                attributes.pop(name, None)
            for name in change.remove_tags:
                tags.pop(name, None)
            self._records[key] = replace(
                current,
                attributes=attributes,
                tags=tags,
                sources={**current.sources, **change.add_sources},
                trigger=current.trigger if change.trigger is None else change.trigger,
                version=current.version + 1,
                modified=current.modified if change.modified is None else change.modified,
            )
            return True

    def delete(self, record: QueueRecord) -> bool:
        key = (record.account, record.name)
        with self._lock:
            current = self._records.get(key)
            if current is None or current.backing_url != record.backing_url:
                return False
            del self._records[key]
            return True

    def list(
        self, account: str, prefix: str, limit: int, start_after: str | None
    ) -> tuple[list[QueueRecord], bool]:
        with self._lock:
            names = sorted(
                name for (acct, name) in self._records
                if acct == account and name.startswith(prefix)
                and (start_after is None or name > start_after)
            )
            found = [self._records[(account, name)] for name in names]
        return found[:limit], len(found) > limit


@dataclass
class _Message:
    message_id: str
    body: str
    sent: float
    visible_at: float
    group_id: str | None = None
    dedup_id: str | None = None
    receive_count: int = 0
    first_receive: float | None = None
    handle: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class _Queue:
    url: str
    arn: str
    fifo: bool
    attributes: dict[str, str]
    redrive: dict[str, object] | None
    messages: list[_Message] = field(default_factory=list)
    sequence: int = 0


class MemoryMessageStore:
    """Backing queues in memory: visibility, delay, receive counts, redrive by ARN."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._queues: dict[str, _Queue] = {}
        self._lock = threading.Lock()

    def _queue(self, url: str) -> _Queue:
        found = self._queues.get(url)
        if found is None:
            raise Gone("sqs", "AWS.SimpleQueueService.NonExistentQueue")
        return found

    def create_queue(
        self, fifo: bool, attributes: Mapping[str, str], redrive: Mapping[str, object] | None
    ) -> tuple[str, str]:
        name = "sealq-" + secrets.token_hex(16) + (".fifo" if fifo else "")
        url = f"memory://sqs/{ACCOUNT}/{name}"
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        mirrored = {k: v for k, v in attributes.items() if k in MIRRORED_ATTRIBUTES}
        with self._lock:
            self._queues[url] = _Queue(url, arn, fifo, mirrored, dict(redrive) if redrive else None)
        return url, arn

    def set_attributes(
        self, url: str, attributes: Mapping[str, str], redrive: Mapping[str, object] | None
    ) -> None:
        with self._lock:
            queue = self._queue(url)
            queue.attributes.update(
                {k: v for k, v in attributes.items() if k in MIRRORED_ATTRIBUTES}
            )
            if redrive is not None:
                queue.redrive = dict(redrive) or None

    def get_attributes(self, url: str, names: Iterable[str]) -> dict[str, str]:
        now = self._clock.now()
        with self._lock:
            queue = self._queue(url)
            values = {"QueueArn": queue.arn}
            visible = [m for m in queue.messages if m.visible_at <= now]
            values[COUNT_ATTRIBUTES[0]] = str(len(visible))
            values[COUNT_ATTRIBUTES[1]] = str(
                sum(1 for m in queue.messages if m.visible_at > now and m.handle))
            values[COUNT_ATTRIBUTES[2]] = str(
                sum(1 for m in queue.messages if m.visible_at > now and not m.handle))
        wanted = set(names)
        return {k: v for k, v in values.items() if "All" in wanted or k in wanted}

    def delete_queue(self, url: str) -> None:
        with self._lock:
            self._queue(url)
            del self._queues[url]

    def purge(self, url: str) -> None:
        with self._lock:
            self._queue(url).messages.clear()

    def send_batch(
        self, url: str, entries: list[Outgoing]
    ) -> tuple[dict[str, Accepted], dict[str, StorageError]]:
        now = self._clock.now()
        sent: dict[str, Accepted] = {}
        with self._lock:
            queue = self._queue(url)
            default_delay = int(queue.attributes.get("DelaySeconds", "0"))
            for entry in entries:
                if queue.fifo and any(m.dedup_id == entry.dedup_id for m in queue.messages):
                    duplicate = next(m for m in queue.messages if m.dedup_id == entry.dedup_id)
                    sent[entry.entry_id] = Accepted(duplicate.message_id)
                    continue
                delay = default_delay if entry.delay is None else entry.delay
                message = _Message(
                    message_id=secrets.token_hex(16),
                    body=entry.body,
                    sent=now,
                    visible_at=now + delay,
                    group_id=entry.group_id,
                    dedup_id=entry.dedup_id,
                )
                sequence = None
                if queue.fifo:
                    queue.sequence += 1
                    sequence = str(queue.sequence).zfill(20)
                    message.attributes["SequenceNumber"] = sequence
                queue.messages.append(message)
                sent[entry.entry_id] = Accepted(message.message_id, sequence)
        return sent, {}

    def receive(
        self,
        url: str,
        *,
        max_messages: int,
        visibility_timeout: int | None,
        wait_seconds: int | None,
        attempt_id: str | None,
    ) -> list[BackingMessage]:
        now = self._clock.now()
        out: list[BackingMessage] = []
        with self._lock:
            queue = self._queue(url)
            timeout = (
                int(queue.attributes.get("VisibilityTimeout", "30"))
                if visibility_timeout is None else visibility_timeout
            )
            busy_groups = {m.group_id for m in queue.messages
                           if queue.fifo and m.visible_at > now and m.handle}
            for message in list(queue.messages):
                if len(out) >= max_messages:
                    break
                if message.visible_at > now or message.group_id in busy_groups:
                    continue
                if self._redriven(queue, message):
                    continue
                message.receive_count += 1
                message.first_receive = message.first_receive or now
                message.visible_at = now + timeout
                message.handle = secrets.token_hex(24)
                attributes = {
                    "SenderId": ACCOUNT,
                    "SentTimestamp": str(int(message.sent * 1000)),
                    "ApproximateReceiveCount": str(message.receive_count),
                    "ApproximateFirstReceiveTimestamp": str(int(message.first_receive * 1000)),
                    **message.attributes,
                }
                if message.group_id is not None:
                    attributes["MessageGroupId"] = message.group_id
                if message.dedup_id is not None and queue.fifo:
                    attributes["MessageDeduplicationId"] = message.dedup_id
                out.append(BackingMessage(message.message_id, message.handle, message.body,
                                          attributes))
        return out

    def _redriven(self, queue: _Queue, message: _Message) -> bool:
        """Move a message past maxReceiveCount to its dead-letter queue (lock held)."""
        if not queue.redrive:
            return False
        if message.receive_count < int(str(queue.redrive["maxReceiveCount"])):
            return False
        target = next((q for q in self._queues.values()
                       if q.arn == queue.redrive["deadLetterTargetArn"]), None)
        if target is None:
            return False
        queue.messages.remove(message)
        target.messages.append(replace(message, handle=None, visible_at=message.visible_at))
        return True

    def _inflight(self, queue: _Queue, receipt_handle: str) -> _Message:
        for message in queue.messages:
            if message.handle == receipt_handle:
                if message.visible_at <= self._clock.now():
                    raise NotInflight("sqs", "AWS.SimpleQueueService.MessageNotInflight")
                return message
        raise InvalidReceipt("sqs", "ReceiptHandleIsInvalid")

    def delete_batch(self, url: str, handles: Mapping[str, str]) -> dict[str, StorageError]:
        failed: dict[str, StorageError] = {}
        with self._lock:
            queue = self._queue(url)
            for entry_id, receipt_handle in handles.items():
                found = [m for m in queue.messages if m.handle == receipt_handle]
                if not found:
                    failed[entry_id] = InvalidReceipt("sqs", "ReceiptHandleIsInvalid")
                    continue
                queue.messages.remove(found[0])
        return failed

    def change_visibility(self, url: str, receipt_handle: str, timeout: int) -> None:
        with self._lock:
            message = self._inflight(self._queue(url), receipt_handle)
            message.visible_at = self._clock.now() + timeout


class MemoryPayloadStore:
    """Sealed bodies by (bucket, key) in a dict."""

    def __init__(self, bucket: str = "memory-payloads") -> None:
        self.bucket = bucket
        self.objects: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def put(self, sealed: bytes) -> tuple[str, str]:
        key = "payloads/" + secrets.token_hex(20)
        with self._lock:
            self.objects[(self.bucket, key)] = bytes(sealed)
        return self.bucket, key

    def get(self, bucket: str, key: str) -> bytes:
        with self._lock:
            found = self.objects.get((bucket, key))
        if found is None:
            raise Gone("s3", "NoSuchKey")
        return found

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self.objects.pop((bucket, key), None)


MEMORY_CMK_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/memory-key"


class MemoryKeyService:
    """The key service's contract without KMS: data keys per (queue, CMK) and period.

    "Encrypted" keys are random handles into a dict, bound to their context as
    KMS binds them; for tests of the handler's logic only.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._keys: dict[bytes, bytes] = {}
        self._current: dict[tuple[str, str], DataKey] = {}
        self._secrets: dict[str, bytes] = {}
        self._sealed: dict[bytes, tuple[dict[str, str], bytes]] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        with self._lock:
            self.calls += 1
            now = self._clock.now()
            current = self._current.get((queue_arn, cmk))
            if current is not None and current.deadline > now:
                return current
            plaintext, encrypted = secrets.token_bytes(32), secrets.token_bytes(32)
            self._keys[key_identity(encrypted=encrypted, cmk_arn=MEMORY_CMK_ARN,
                                    context=context)] = plaintext
            key = DataKey(plaintext, encrypted, MEMORY_CMK_ARN, now + reuse_period)
            self._current[(queue_arn, cmk)] = key
            return key

    def decrypt_key(self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
        with self._lock:
            self.calls += 1
            found = self._keys.get(key_identity(encrypted=encrypted, cmk_arn=cmk_arn,
                                                context=context))
        if found is None:
            raise KeyServiceError("InvalidCiphertext", "The encrypted data key does not open.")
        return found

    def service_secret(self, name: str) -> bytes:
        with self._lock:
            if name not in self._secrets:
                self._secrets[name] = secrets.token_bytes(32)
            return self._secrets[name]

    def seal_secret(self, *, context: Mapping[str, str], plaintext: bytes) -> bytes:
        sealed = secrets.token_bytes(32)
        with self._lock:
            self.calls += 1
            self._sealed[sealed] = (dict(context), bytes(plaintext))
        return sealed

    def open_secret(self, *, context: Mapping[str, str], sealed: bytes) -> bytes:
        with self._lock:
            self.calls += 1
            found = self._sealed.get(bytes(sealed))
        if found is None or found[0] != dict(context):
            raise KeyServiceError("InvalidCiphertext", "The sealed secret does not open.")
        return found[1]


class MemoryQuarantineStore:
    """Quarantined records by queue id in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()

    def put(self, queue_id: str, message_id: str, record: bytes) -> None:
        with self._lock:
            self.records.setdefault(queue_id, {})[message_id] = bytes(record)

    def list(self, queue_id: str) -> list[str]:
        with self._lock:
            return sorted(self.records.get(queue_id, {}))

    def purge(self, queue_id: str) -> int:
        with self._lock:
            return len(self.records.pop(queue_id, {}))


class MemoryMoveTaskStore:
    """Move tasks in a dict; the same conditions as the DynamoDB adapter."""

    def __init__(self) -> None:
        self._tasks: dict[tuple[str, str], MoveTask] = {}
        self._lock = threading.Lock()

    def start(self, task: MoveTask) -> bool:
        with self._lock:
            if any(t.source_arn == task.source_arn and t.status == RUNNING
                   for t in self._tasks.values()):
                return False
            self._tasks[(task.source_arn, task.task_id)] = task
            return True

    def get(self, source_arn: str, task_id: str) -> MoveTask | None:
        with self._lock:
            return self._tasks.get((source_arn, task_id))

    def list(self, source_arn: str, limit: int) -> list[MoveTask]:
        with self._lock:
            found = [t for t in self._tasks.values() if t.source_arn == source_arn]
        return sorted(found, key=lambda t: (t.started, t.task_id), reverse=True)[:limit]

    def save(self, task: MoveTask) -> MoveTask | None:
        key = (task.source_arn, task.task_id)
        with self._lock:
            current = self._tasks.get(key)
            if current is None or current.version != task.version:
                return None
            stored = replace(current, status=task.status, moved=task.moved,
                             failure=task.failure, pending=tuple(task.pending),
                             heartbeat=task.heartbeat, version=current.version + 1)
            self._tasks[key] = stored
            return stored

    def request_cancel(self, source_arn: str, task_id: str) -> MoveTask | None:
        key = (source_arn, task_id)
        with self._lock:
            current = self._tasks.get(key)
            if current is not None and current.status == RUNNING:
                current = replace(current, cancel_requested=True)
                self._tasks[key] = current
            return current


class MemoryAccountStore:
    """Accounts and keys in dicts (tests of the handler without moto)."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._keys: dict[str, AccessKey] = {}
        self._lock = threading.Lock()
        self.reads = 0

    def put_account(self, account: Account) -> bool:
        with self._lock:
            if account.account_id in self._accounts:
                return False
            self._accounts[account.account_id] = account
            return True

    def get_account(self, account_id: str) -> Account | None:
        with self._lock:
            return self._accounts.get(account_id)

    def list_accounts(self) -> list[Account]:
        with self._lock:
            return list(self._accounts.values())

    def set_kms_key(self, account_id: str, cmk: str, allowed: bool) -> bool:
        with self._lock:
            found = self._accounts.get(account_id)
            if found is None:
                return False
            keys: Iterable[str] = (found.kms_keys | {cmk}) if allowed else (found.kms_keys - {cmk})
            self._accounts[account_id] = replace(found, kms_keys=frozenset(keys))
            return True

    def put_key(self, key: AccessKey) -> bool:
        with self._lock:
            if key.access_key_id in self._keys:
                return False
            self._keys[key.access_key_id] = key
            return True

    def get_key(self, access_key_id: str) -> AccessKey | None:
        with self._lock:
            self.reads += 1
            return self._keys.get(access_key_id)

    def list_keys(self, account_id: str) -> list[AccessKey]:
        with self._lock:
            return [k for k in self._keys.values() if k.account == account_id]

    def set_key_status(self, access_key_id: str, status: str) -> bool:
        with self._lock:
            found = self._keys.get(access_key_id)
            if found is None:
                return False
            self._keys[access_key_id] = replace(found, status=status)
            return True

    def delete_key(self, access_key_id: str) -> bool:
        with self._lock:
            return self._keys.pop(access_key_id, None) is not None


def memory_ports(clock: Clock) -> Ports:
    """In-memory storage (tests of the domain without moto)."""
    return Ports(MemoryQueueTable(), MemoryMessageStore(clock), MemoryPayloadStore(),
                 MemoryQuarantineStore(), MemoryAccountStore(), MemoryMoveTaskStore())


class FrontendOptions(TypedDict, total=False):
    """What :class:`Memory` passes on to ``container.build_frontend`` as given (what is not
    given keeps build_frontend's default)."""

    auth_clock: Clock
    metrics: Metrics
    sleep: Callable[[float], None]
    dispatch: Dispatch


class Memory:
    """A handler container on memory ports and the memory key service, with the test
    access key installed and a real boto3 client (``sqs``) in front.

    ``retries``: the attempts ``sqs`` makes (as ``harness.sqs_client``'s); ``options``
    go to ``container.build_frontend`` (a wall clock for X-Amz-Date, metrics, the move
    tasks' sleep and dispatch)."""

    def __init__(self, clock: Clock, *, retries: int | None = None,
                 **options: Unpack[FrontendOptions]) -> None:
        self.clock = clock
        self.ports = memory_ports(clock)
        self.keys = MemoryKeyService(clock)
        self.handler = container.build_frontend(
            settings.get(), ports=self.ports, key_service=self.keys, clock=clock,
            local_clock=clock, **options,
        )
        install_test_key(self.ports.accounts, self.keys, clock)
        self.sqs = sqs_client(self.handler, retries=retries)
