"""The SQS actions: one table over every group, authorization, then the action.

Each action validates everything it reads before it changes anything, so bad input
gets SQS's error and leaves no trace (invariant 9). It returns a value
(:mod:`chalicelib.domain.results`); the protocol layer writes it for the wire.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib import errors
from chalicelib.auth import access
from chalicelib.auth.policy import Decision
from chalicelib.domain import message_actions, move_actions, queue_actions
from chalicelib.domain.context import Caller, Handler, Services, named_queue
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.results import Result
from chalicelib.storage.errors import Gone

_HANDLERS: dict[str, Handler] = {
    **queue_actions.ACTIONS, **message_actions.ACTIONS, **move_actions.ACTIONS,
}


class Actions:
    def __init__(self, services: Services) -> None:
        self.services = services

    def dispatch(self, caller: Caller, action: str, params: dict[str, Any]) -> Result:
        handler = _HANDLERS.get(action)
        if handler is None:
            raise errors.unsupported_operation(f"{action} is not supported by sealq yet.")
        caller = self.authorize(caller, action, params)
        try:
            return handler(self.services, caller, params)
        except Gone:
            # Another container deleted the queue since this one cached it.
            named = named_queue(caller, params.get("QueueUrl"))
            if named is not None:
                self.services.registry.forget(*named)
            raise errors.queue_does_not_exist() from None

    def authorize(self, caller: Caller, operation: str, params: dict[str, Any]) -> Caller:
        """The one authorization check, before any action runs: the queue a request
        names (its QueueUrl, or GetQueueUrl's name and owner) against its owner and
        policy. Returns the caller, marked with the other account's queue it may use.

        Another account is answered the same whether the queue exists or not, so a
        refusal tells nothing of the owner's queues (GetQueueUrl: QueueDoesNotExist, as
        AWS answers for a queue not shared; the rest: AccessDenied)."""
        target = _target(caller, operation, params)
        if target is None:
            return caller
        owner, name = target
        if owner == caller.account and access.sqs_action(operation) not in access.GRANTABLE:
            return caller  # owner-only actions: no policy can take them from the owner
        registry = self.services.registry
        arn = registry.arn(owner, name)
        try:
            queue: Queue | None = registry.get(owner, name)
        except errors.SqsError:
            queue = None
        if queue is None:
            if owner == caller.account:
                return caller  # the action answers QueueDoesNotExist itself
            decision = Decision.NONE
        else:
            decision = access.decide(
                owner=owner, caller=caller.account, operation=operation, queue_arn=arn,
                policy_text=queue.attributes.get("Policy", ""), secure=caller.secure,
            )
        if decision is Decision.ALLOW:
            return caller if owner == caller.account else replace(caller, granted=target)
        if operation == "GetQueueUrl":
            raise errors.queue_does_not_exist()
        raise access.denied(caller.account, operation, arn, decision is Decision.DENY)


def _target(caller: Caller, operation: str, params: dict[str, Any]) -> tuple[str, str] | None:
    """(account, name) of the queue a request acts on, when it names one."""
    if operation == "GetQueueUrl":
        name = params.get("QueueName")
        owner = params.get("QueueOwnerAWSAccountId") or caller.account
        if not isinstance(name, str) or not name or not isinstance(owner, str):
            return None
        return owner, name
    if operation in ("CreateQueue", "ListQueues"):
        return None
    return named_queue(caller, params.get("QueueUrl"))
