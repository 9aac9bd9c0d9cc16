"""Message move tasks (dead-letter queue redrive): StartMessageMoveTask,
CancelMessageMoveTask, ListMessageMoveTasks.

A task moves the messages of a dead-letter queue either back to the queues they were
redriven from (no ``DestinationArn``) or to one other queue. Back to the source, a
message moves as stored: its encryption context already names that queue, so it is
not opened. To another queue every message is opened and sealed again under the
destination's key and context (the stock ESDK opens it there with no sealq code).
The moving happens outside the request, in :mod:`chalicelib.domain.movetasks.worker` (which also
states what a crash can and cannot do).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from chalicelib import errors
from chalicelib.clock import Clock
from chalicelib.domain.messages.quarantine import Quarantine
from chalicelib.domain.messages.sending import Sender
from chalicelib.domain.messages.stored import StoredMessages
from chalicelib.domain.movetasks.worker import MOVE_TASK_EVENT, Worker, move_event
from chalicelib.domain.queues.attributes import parse_arn
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.queues.registry import Registry
from chalicelib.observability.metrics import NO_METRICS, Metrics
from chalicelib.storage.ports import RUNNING, MoveTask, MoveTaskStore

log = logging.getLogger("sealq.movetasks")

MAX_RATE = 500  # SQS: MaxNumberOfMessagesPerSecond is at most 500
# A RUNNING task without progress for this long lost its worker (Lambda gave up its
# retries, a local process ended): the next Start or List on its source dispatches a
# new one, which resumes from the stored task.
STALE_AFTER = 300

Dispatch = Callable[[dict[str, Any]], None]

ARN_FORMAT = "arn:<partition>:<service>:<region>:<account-id>:<resource-id>"


def task_handle(task: MoveTask) -> str:
    """SQS's handle format: base64 of ``{"taskId": ..., "sourceArn": ...}``."""
    text = json.dumps({"taskId": task.task_id, "sourceArn": task.source_arn},
                      separators=(",", ":"))
    return base64.b64encode(text.encode()).decode("ascii")


def parse_handle(handle: str) -> tuple[str, str] | None:
    """(source ARN, task id) of a task handle, or None."""
    try:
        data = json.loads(base64.b64decode(handle.encode("ascii"), validate=True))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    if not isinstance(data, dict):
        return None
    source, task_id = data.get("sourceArn"), data.get("taskId")
    if not isinstance(source, str) or not isinstance(task_id, str) or not source or not task_id:
        return None
    return source, task_id


def status_of(task: MoveTask) -> str:
    return "CANCELLING" if task.status == RUNNING and task.cancel_requested else task.status


class MoveTasks:
    """The three actions and the worker of one container."""

    def __init__(
        self,
        registry: Registry,
        sender: Sender,
        stored: StoredMessages,
        quarantine: Quarantine,
        tasks: MoveTaskStore,
        *,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        dispatch: Dispatch | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.registry = registry
        self.sender = sender
        self.stored = stored
        self.quarantine = quarantine
        self.tasks = tasks
        self.clock = clock  # wall clock: StartedTimestamp, and the rate's pacing
        self.sleep = sleep
        self.dispatch: Dispatch = dispatch or (lambda event: None)
        self.metrics = metrics  # MovedMessages, MoveTasksEnded (the worker's)

    # -- the actions ----------------------------------------------------------------

    def queue_by_arn(self, account: str, arn: str, parameter: str) -> Queue:
        if len(arn.split(":")) != 6 or not arn.startswith("arn:"):
            raise errors.invalid_parameter_value(
                f"You must use this format to specify the {parameter}: {ARN_FORMAT}")
        named = parse_arn(arn)
        missing = errors.resource_not_found(
            f"The resource that you specified for the {parameter} parameter doesn't exist.")
        if named is None or named[0] != account:
            raise missing
        try:
            return self.registry.get_fresh(*named)
        except errors.SqsError:
            raise missing from None

    def start(self, account: str, source_arn: str, destination_arn: str | None,
              rate: int | None) -> str:
        source = self.queue_by_arn(account, source_arn, "SourceArn")
        if not self.registry.redrive.sources_targeting(source.account, source.arn):
            raise errors.invalid_parameter_value(
                "Source queue must be configured as a Dead Letter Queue.")
        if destination_arn is not None:
            destination = self.queue_by_arn(account, destination_arn, "DestinationArn")
            if destination.arn == source.arn:
                raise errors.invalid_parameter_value(
                    "Source queue arn and destination queue arn cannot be the same.")
            if destination.fifo != source.fifo:
                raise errors.invalid_parameter_value(
                    "The source queue and destination queue must be of the same queue type.")
        counts = self.registry.counts(source)
        now = self.clock.now()
        task = MoveTask(
            task_id=str(uuid.uuid4()), source_arn=source.arn, destination_arn=destination_arn,
            rate=rate, started=int(now * 1000),
            to_move=int(counts.get("ApproximateNumberOfMessages", "0")), heartbeat=int(now),
        )
        if not self.tasks.start(task):
            for active in self.tasks.list(source.arn, 10):
                self._revive(active)
            raise errors.invalid_parameter_value(
                "There is already a task running. Only one active task is allowed for a "
                "source queue arn at a given time.")
        try:
            self.dispatch(move_event(task))
        except Exception as err:
            log.error("move task %s could not be dispatched: %s", task.task_id,
                      type(err).__name__)
            self.tasks.save(replace(task, status="FAILED", failure="The task could not start."))
            raise
        return task_handle(task)

    def cancel(self, account: str, handle: str) -> int:
        """AWS's answers, recorded: a handle that is none is an invalid TaskHandle; one
        whose source queue is not the caller's to see says the SourceArn does not exist;
        an unknown task of that queue does not exist."""
        parsed = parse_handle(handle)
        if parsed is None:
            raise errors.invalid_parameter_value("Value for parameter TaskHandle is invalid.")
        source = self.queue_by_arn(account, parsed[0], "SourceArn")
        task = self.tasks.request_cancel(source.arn, parsed[1])
        if task is None:
            raise errors.resource_not_found("Task does not exist.")
        if task.status != RUNNING:
            raise errors.invalid_parameter_value(
                f"Only a task with status RUNNING can be cancelled; this one is {task.status}.")
        return task.moved

    def list(self, account: str, source_arn: str, limit: int) -> list[MoveTask]:
        source = self.queue_by_arn(account, source_arn, "SourceArn")
        found = self.tasks.list(source.arn, limit)
        for task in found:
            self._revive(task)
        return found

    def _revive(self, task: MoveTask) -> None:
        """Dispatch a new worker for a RUNNING task whose worker died (best effort)."""
        now = int(self.clock.now())
        if task.status != RUNNING or now - task.heartbeat < STALE_AFTER:
            return
        # The heartbeat write decides which of several callers dispatches.
        if self.tasks.save(replace(task, heartbeat=now)) is None:
            return
        log.warning("move task %s had stopped; dispatching it again", task.task_id)
        try:
            self.dispatch(move_event(task))
        except Exception as err:  # noqa: BLE001 - the next List tries again
            log.error("move task %s could not be dispatched: %s", task.task_id,
                      type(err).__name__)

    # -- the worker -------------------------------------------------------------------

    def run(self, event: Mapping[str, Any], deadline: float | None = None) -> None:
        """Work on the task an event names until it ends or ``deadline`` (monotonic)
        is near. Safe to run again for the same event at any time (a Lambda retry,
        a crash): the stored task says where it is."""
        body = event[MOVE_TASK_EVENT]
        task = self.tasks.get(str(body["source_arn"]), str(body["task_id"]))
        if task is None or task.status != RUNNING:
            return
        Worker(self, task, deadline, body.get("settled_version")).go()
