"""The message move task actions: start, cancel and list (dead-letter queue redrive)."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.context import Caller, Handler, Services, registrar
from chalicelib.domain.movetasks.tasks import MAX_RATE, status_of, task_handle
from chalicelib.domain.params import opt_int, opt_str, require_str
from chalicelib.domain.results import TaskCancelled, TaskEntry, TaskHandle, TaskList
from chalicelib.storage.ports import RUNNING, MoveTask

ACTIONS: dict[str, Handler] = {}
action = registrar(ACTIONS)


@action("StartMessageMoveTask")
def start_message_move_task(svc: Services, caller: Caller, params: dict[str, Any]
                            ) -> TaskHandle:
    source = require_str(params, "SourceArn")
    destination = opt_str(params, "DestinationArn") or None
    rate = opt_int(params, "MaxNumberOfMessagesPerSecond", 1, MAX_RATE)
    return TaskHandle(svc.moves_or_fail().start(caller.account, source, destination, rate))


@action("CancelMessageMoveTask")
def cancel_message_move_task(svc: Services, caller: Caller, params: dict[str, Any]
                             ) -> TaskCancelled:
    moved = svc.moves_or_fail().cancel(caller.account, require_str(params, "TaskHandle"))
    return TaskCancelled(moved)


@action("ListMessageMoveTasks")
def list_message_move_tasks(svc: Services, caller: Caller, params: dict[str, Any]
                            ) -> TaskList:
    source = require_str(params, "SourceArn")
    limit = opt_int(params, "MaxResults", 1, 10) or 1
    found = svc.moves_or_fail().list(caller.account, source, limit)
    return TaskList([_entry(t) for t in found])


def _entry(task: MoveTask) -> TaskEntry:
    status = status_of(task)
    return TaskEntry(task, status, task_handle(task) if status == RUNNING else None)
