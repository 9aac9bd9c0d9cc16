"""The worker of a message move task: one turn on one task, resumable at any point.

Dispatched by :mod:`chalicelib.domain.movetasks.tasks` with the event ``{MOVE_TASK_EVENT:
{"source_arn", "task_id"[, "settled_version"]}}`` (in AWS an asynchronous invoke of
the handler's own function, locally a background thread); it works until the task
ends or its time runs short, then dispatches the same event again.

What a crash can do (the guarantee):
- Nothing is lost: a message leaves the source only after the destination accepted
  its copy and the task recorded that (``pending``); until then it stays in the
  source, hidden for :data:`VISIBILITY` seconds, and a resumed worker moves it.
- Nothing is doubled by a crash after that record: a resumed worker that receives a
  recorded message deletes it from the source without sending it again, and does not
  end the task until such a batch had time to show again (its visibility timeout).
- One window is left: a crash after the destination accepted a copy and before the
  record is written (one DynamoDB write) sends that batch again on resume. A FIFO
  destination closes it too: every copy carries the deduplication id
  ``sha256(task id : source message id)``, so SQS drops the second copy within its
  5-minute deduplication interval. SQS standard queues have no such id.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from chalicelib import errors
from chalicelib.clock import Clock
from chalicelib.crypto.sealing import SealError, bound_to
from chalicelib.domain.messages.envelope import MalformedEnvelope
from chalicelib.domain.messages.quarantine import Quarantine
from chalicelib.domain.messages.sending import Sender
from chalicelib.domain.messages.stored import StoredMessages, Unreadable
from chalicelib.domain.queues.attributes import parse_arn
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.queues.registry import Registry
from chalicelib.keyservice.api import KeyServiceError
from chalicelib.observability.metrics import MOVE_TASKS_ENDED, MOVED_MESSAGES, Metrics
from chalicelib.storage import payloads
from chalicelib.storage.errors import StorageError, Transient
from chalicelib.storage.ports import (
    RUNNING,
    BackingMessage,
    MoveTask,
    MoveTaskStore,
    Outgoing,
    send_batches,
)

log = logging.getLogger("sealq.movetasks")

MOVE_TASK_EVENT = "sealq-move-task"
# Seconds a batch being moved stays hidden in the source (a crashed worker's batch
# reappears after this and is moved by the resumed worker).
VISIBILITY = 60
# A worker with less time than this left hands over to a fresh invocation.
RESERVE = 15.0
# Source message ids remembered as sent (covers a batch whose deletes failed and a
# worker racing another); a batch is at most 10.
PENDING_KEPT = 100
_TRANSIENT_ATTEMPTS = 3
_SAVE_ATTEMPTS = 5

NO_SOURCE_QUEUE = "The source queue of a message does not exist any more."
NOT_REDRIVEN = "A message in the queue was not moved there from a source queue."


def move_event(task: MoveTask, settled: bool = False) -> dict[str, Any]:
    """The worker's event; ``settled``: the sender deleted every batch it recorded,
    so the next worker owes nothing hidden in the source at this task version."""
    body: dict[str, Any] = {"source_arn": task.source_arn, "task_id": task.task_id}
    if settled:
        body["settled_version"] = task.version
    return {MOVE_TASK_EVENT: body}


def _dedup_id(task: MoveTask, item: BackingMessage) -> str:
    return hashlib.sha256(f"{task.task_id}:{item.message_id}".encode()).hexdigest()


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Crew(Protocol):
    """What a worker works with (a :class:`~chalicelib.domain.movetasks.tasks.MoveTasks`)."""

    registry: Registry
    sender: Sender
    stored: StoredMessages
    quarantine: Quarantine
    tasks: MoveTaskStore
    clock: Clock
    sleep: Callable[[float], None]
    dispatch: Callable[[dict[str, Any]], None]
    metrics: Metrics


class Worker:
    """One worker's turn on one task."""

    def __init__(self, owner: Crew, task: MoveTask, deadline: float | None,
                 settled_version: Any = None) -> None:
        self.o = owner
        self.task = task
        self.deadline = deadline
        # Until when recorded messages may still hide in the source (their delete not
        # known to have happened): a crashed worker's last batch, or a failed delete.
        # The task does not end before then, or they would stay behind as copies.
        settled = task.moved == 0 or settled_version == task.version
        self.owed_until = 0.0 if settled else float(task.heartbeat + VISIBILITY + 1)

    def go(self) -> None:
        try:
            source = self._queue(self.task.source_arn)
            destination = (self._queue(self.task.destination_arn)
                           if self.task.destination_arn else None)
            self._loop(source, destination)
        except _Stopped:
            return
        except _Failed as failed:
            self._finish("FAILED", failed.reason)

    def _queue(self, arn: str) -> Queue:
        named = parse_arn(arn)
        try:
            if named is None:
                raise errors.queue_does_not_exist()
            return self.o.registry.get_fresh(*named)
        except errors.SqsError:
            raise _Failed("AWS.SimpleQueueService.NonExistentQueue") from None

    def _loop(self, source: Queue, destination: Queue | None) -> None:
        faults = 0
        while True:
            # Read again each round: a cancel, or another worker finishing, shows here.
            fresh = self.o.tasks.get(self.task.source_arn, self.task.task_id)
            if fresh is None or fresh.status != RUNNING:
                return
            self.task = fresh
            if self.task.cancel_requested:
                if self._owing():
                    self._sweep(source, destination)  # what was moved leaves the source
                self._finish("CANCELLED")
                return
            if self.task.moved >= self.task.to_move and not self._owing():
                self._finish("COMPLETED")
                return
            if self._short_of_time():
                return
            began = self.o.clock.now()
            rate = self.task.rate
            try:
                items = self.o.stored.store.receive(
                    source.backing_url, max_messages=min(10, rate or 10),
                    visibility_timeout=VISIBILITY, wait_seconds=0, attempt_id=None)
                if not items:
                    if self._owing():
                        continue
                    self._finish("COMPLETED")
                    return
                moved = self._move(source, destination, items)
            except Transient as err:
                faults += 1
                if faults >= _TRANSIENT_ATTEMPTS:
                    raise _Failed(err.code) from None
                self.o.sleep(float(faults))
                continue
            except StorageError as err:
                raise _Failed(err.code) from None
            faults = 0
            if rate and moved:
                self.o.sleep(max(0.0, moved / rate - (self.o.clock.now() - began)))

    def _short_of_time(self, needed: float = 0.0) -> bool:
        """Hand over to a fresh invocation when this one's time runs short."""
        if self.deadline is None or self.deadline - time.monotonic() >= RESERVE + needed:
            return False
        self.o.dispatch(move_event(self.task, settled=self.owed_until == 0))
        return True

    def _owing(self) -> bool:
        """Wait for recorded messages that may still hide in the source; True when the
        loop must look again (after the wait)."""
        wait = self.owed_until - self.o.clock.now()
        if self.owed_until == 0 or wait <= 0:
            self.owed_until = 0.0
            return False
        if self.deadline is not None and self.deadline - time.monotonic() < RESERVE + wait:
            return True  # the loop hands over; the next worker waits
        self.o.sleep(wait)
        self.owed_until = 0.0
        return True

    def _sweep(self, source: Queue, destination: Queue | None) -> None:
        """Delete recorded messages that showed again, moving nothing new."""
        while True:
            items = self.o.stored.store.receive(source.backing_url, max_messages=10,
                                         visibility_timeout=VISIBILITY, wait_seconds=0,
                                         attempt_id=None)
            done = [i for i in items if i.message_id in self.task.pending]
            self.o.stored.hand_back(source, [i for i in items if i not in done])
            if not done:
                return
            self._delete(source, destination, done)

    def _target(self, sealed: bytes, source: Queue) -> Queue:
        """The queue a message was redriven from (its sealing context names it)."""
        binding = bound_to(sealed)
        arn, queue_id = binding.queue_arn, binding.queue_id
        if arn == source.arn:
            raise _Failed(NOT_REDRIVEN)
        try:
            target = self._queue(arn)
        except _Failed:
            raise _Failed(NO_SOURCE_QUEUE) from None
        if target.queue_id != queue_id or target.fifo != source.fifo:
            raise _Failed(NO_SOURCE_QUEUE)  # deleted since, and created again
        return target

    def _move(self, source: Queue, destination: Queue | None,
              items: list[BackingMessage]) -> int:
        """Move one batch; how many messages it moved."""
        done = [i for i in items if i.message_id in self.task.pending]  # sent before a crash
        plans: dict[str, tuple[Queue, list[tuple[BackingMessage, Outgoing, Any]]]] = {}
        failure: str | None = None
        quarantined: list[BackingMessage] = []
        for item in items:
            if item in done or failure is not None:
                continue
            try:
                sealed = self._load(source, items, item)
                if destination is None:
                    target, body, pointer = self._target(sealed, source), item.body, None
                else:
                    target = destination
                    body, pointer = self.o.sender.reseal(source, sealed, destination)
            except (SealError, Unreadable, MalformedEnvelope) as err:
                self.o.quarantine.put(source, item, str(err))
                quarantined.append(item)
                continue
            except KeyServiceError as err:
                failure = err.code
                continue
            except _Failed as failed:
                failure = failed.reason
                continue
            fifo = target.fifo
            outgoing = Outgoing(
                entry_id=str(len(plans.get(target.backing_url, (target, []))[1])),
                body=body,
                group_id=item.attributes.get("MessageGroupId") if fifo else None,
                dedup_id=_dedup_id(self.task, item) if fifo else None,
            )
            plans.setdefault(target.backing_url, (target, []))[1].append((item, outgoing, pointer))
        sent: list[BackingMessage] = []
        unsent = [i for i in items if i not in done and i not in quarantined]
        try:
            for url, (_, planned) in plans.items():
                for chunk in send_batches(planned, lambda entry: len(entry[1].body)):
                    accepted, refused = self.o.stored.store.send_batch(
                        url, [o for _, o, _ in chunk])
                    for item, outgoing, pointer in chunk:
                        if outgoing.entry_id in accepted:
                            sent.append(item)
                        else:
                            why = refused.get(outgoing.entry_id)
                            failure = failure or (why.code if why is not None else "Refused")
                            if pointer is not None:
                                self.o.stored.drop_payload(pointer, "an unmoved message")
        except Exception:
            # A send failed part-way: what was accepted is recorded and removed as usual.
            self._settle(source, destination, sent, done, unsent)
            raise
        self._settle(source, destination, sent, done, unsent)
        if failure is not None:
            raise _Failed(failure)
        return len(sent)

    def _load(self, source: Queue, items: list[BackingMessage], item: BackingMessage) -> bytes:
        """A message's sealed bytes; on a storage failure the whole batch is handed
        back first (nothing is sent yet), so no message stays hidden for nothing."""
        try:
            return self.o.stored.load(item)
        except StorageError:
            self.o.stored.hand_back(source, items)
            raise

    def _settle(self, source: Queue, destination: Queue | None, sent: list[BackingMessage],
                done: list[BackingMessage], unsent: list[BackingMessage]) -> None:
        """Record what the destination accepted, then hand back the rest and delete it."""
        if sent:
            self._record(sent)
        self.o.stored.hand_back(source, [i for i in unsent if i not in sent])
        try:
            complete = self._delete(source, destination, sent + done)
        except StorageError:
            complete = False
        if not complete:
            self.owed_until = self.o.clock.now() + VISIBILITY + 1

    def _record(self, sent: list[BackingMessage]) -> None:
        """Count the batch and remember its ids, before anything leaves the source."""
        ids = tuple(i.message_id for i in sent)

        def change(current: MoveTask) -> MoveTask:
            return replace(current, moved=current.moved + len(ids),
                           pending=(current.pending + ids)[-PENDING_KEPT:])

        if not self._save(change):
            # The task ended meanwhile (another worker finished it): the copies stay
            # unrecorded and their originals stay in the source (never lost, but then
            # in both queues).
            raise _Stopped()
        self.o.metrics.add(MOVED_MESSAGES, len(ids))

    def _save(self, change: Callable[[MoveTask], MoveTask]) -> bool:
        current = self.task
        now = int(self.o.clock.now())
        for _ in range(_SAVE_ATTEMPTS):
            stored = self.o.tasks.save(replace(change(current), heartbeat=now))
            if stored is not None:
                self.task = stored
                return True
            fresh = self.o.tasks.get(current.source_arn, current.task_id)
            if fresh is None or fresh.status != RUNNING:
                return False
            current = fresh
        return False

    def _finish(self, status: str, reason: str | None = None) -> None:
        if not self._save(lambda current: replace(current, status=status, failure=reason)):
            log.warning("move task %s ended elsewhere", self.task.task_id)
            return
        self.o.metrics.add(MOVE_TASKS_ENDED, Status=status)

    def _delete(self, source: Queue, destination: Queue | None,
                items: list[BackingMessage]) -> bool:
        """Delete moved messages from the source; True when every one is gone."""
        if not items:
            return True
        refused = self.o.stored.store.delete_batch(
            source.backing_url, {str(n): i.receipt_handle for n, i in enumerate(items)})
        for n, item in enumerate(items):
            pointer = payloads.parse_pointer(item.body)
            # Moved as stored, the payload goes with the message; resealed, the old one
            # is dropped once its message is gone.
            if str(n) not in refused and destination is not None and pointer is not None:
                self.o.stored.drop_payload(pointer, "a moved message")
        return not refused


class _Stopped(Exception):
    """This worker lost the task to another; it stops without touching the source."""

