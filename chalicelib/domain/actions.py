"""SQS actions: read parameters, call the queue registry and message operations.

Each action validates everything it reads before it changes anything, so bad
input gets SQS's error and leaves no trace (invariant 9).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chalicelib import errors, timeouts
from chalicelib.auth import access, policy
from chalicelib.auth.policy import Decision
from chalicelib.domain.messages.messages import Messages, Outgoing
from chalicelib.domain.messages.rules import (
    check_batch_size,
    message_size,
    parse_message_attributes,
    parse_message_system_attributes,
    parse_queue_url,
    validate_batch_entries,
    validate_fifo_id,
    validate_message_body,
    validate_receive_attempt_id,
    validate_tag_keys,
    validate_tags,
)
from chalicelib.domain.movetasks.tasks import MAX_RATE, MoveTasks, status_of, task_handle
from chalicelib.domain.params import (
    opt_int,
    opt_str,
    opt_str_list,
    opt_str_map,
    require_int,
    require_str,
)
from chalicelib.domain.queues.attributes import MAX_POLICY_BYTES
from chalicelib.domain.queues.registry import Queue, Registry, read_attributes
from chalicelib.errors import invalid_value
from chalicelib.protocol.json10 import SqsRequest
from chalicelib.storage.errors import Gone
from chalicelib.storage.ports import RUNNING, MoveTask


@dataclass(frozen=True)
class Caller:
    """Who is asking (the account) and the base URL queue URLs are built on."""

    account: str
    base_url: str
    # time.monotonic() by which the answer must be out; None: no limit.
    deadline: float | None = None
    # The request came over TLS (the policy condition key aws:SecureTransport).
    secure: bool = False
    # Another account's queue (account, name) this request was authorized for.
    granted: tuple[str, str] | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


# AddPermission (SQS API reference): a label is 1-80 of [A-Za-z0-9_-]; at most seven
# actions per statement; principals are 12-digit account ids.
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,80}", re.ASCII)
_ACCOUNT_ID = re.compile(r"[0-9]{12}", re.ASCII)
MAX_PERMISSION_ACTIONS = 7

Handler = Callable[["Actions", Caller, dict[str, Any]], dict[str, Any]]
_HANDLERS: dict[str, Handler] = {}


def action(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


class Actions:
    def __init__(self, registry: Registry, messages: Messages,
                 moves: MoveTasks | None = None) -> None:
        self.registry = registry
        self.messages = messages
        self.moves = moves

    def moves_or_fail(self) -> MoveTasks:
        if self.moves is None:
            raise errors.unsupported_operation("Message move tasks are not configured.")
        return self.moves

    def dispatch(self, caller: Caller, request: SqsRequest) -> dict[str, Any]:
        handler = _HANDLERS.get(request.action)
        if handler is None:
            raise errors.unsupported_operation(
                f"{request.action} is not supported by sealq yet."
            )
        caller = self.authorize(caller, request.action, request.params)
        try:
            return handler(self, caller, request.params)
        except Gone:
            # Another container deleted the queue since this one cached it.
            named = _named(caller, request.params.get("QueueUrl"))
            if named is not None:
                self.registry.forget(*named)
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
        arn = self.registry.arn(owner, name)
        try:
            queue: Queue | None = self.registry.get(owner, name)
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

    def queue(self, caller: Caller, params: dict[str, Any]) -> Queue:
        """The queue a QueueUrl names: the caller's own, or one it was authorized for."""
        named = _named(caller, require_str(params, "QueueUrl"))
        if named is None or (named[0] != caller.account and named != caller.granted):
            raise errors.queue_does_not_exist()
        return self.registry.get(*named)


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
    return _named(caller, params.get("QueueUrl"))


def _named(caller: Caller, url: object) -> tuple[str, str] | None:
    """(account, name) of a QueueUrl; AWS also takes a bare queue name, in the caller's
    own account."""
    if isinstance(url, str) and "/" not in url and url:
        return caller.account, url
    return parse_queue_url(url)


# -- queues ---------------------------------------------------------------------


@action("CreateQueue")
def create_queue(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name = require_str(params, "QueueName")
    attributes = opt_str_map(params, "Attributes") or {}
    tags = validate_tags(params.get("tags"), queue_name=name)
    queue = svc.registry.create(caller.account, name, attributes, tags)
    return {"QueueUrl": queue.url(caller.base_url)}


@action("GetQueueUrl")
def get_queue_url(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    name = require_str(params, "QueueName")
    owner = opt_str(params, "QueueOwnerAWSAccountId") or caller.account
    if owner != caller.account and (owner, name) != caller.granted:
        raise errors.queue_does_not_exist()
    return {"QueueUrl": svc.registry.get(owner, name).url(caller.base_url)}


@action("ListQueues")
def list_queues(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    prefix = opt_str(params, "QueueNamePrefix") or ""
    limit = opt_int(params, "MaxResults", 1, 1000)
    token = opt_str(params, "NextToken")
    start_after = None
    if token:
        try:
            start_after = base64.urlsafe_b64decode(token.encode()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_value("NextToken", token, "Invalid NextToken.") from None
    found, more = svc.registry.list_queues(caller.account, prefix, limit or 1000, start_after)
    out: dict[str, Any] = {}
    if found:  # AWS leaves an empty list out
        out["QueueUrls"] = [q.url(caller.base_url) for q in found]
    if limit is not None and more and found:
        out["NextToken"] = base64.urlsafe_b64encode(found[-1].name.encode()).decode("ascii")
    return out


@action("GetQueueAttributes")
def get_queue_attributes(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    names = opt_str_list(params, "AttributeNames") or []
    values = read_attributes(queue, names, lambda: svc.registry.counts(queue))
    return {"Attributes": values} if values else {}


@action("SetQueueAttributes")
def set_queue_attributes(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    attributes = opt_str_map(params, "Attributes")
    if attributes is None:
        raise errors.missing_parameter("Attributes")
    svc.registry.set_attributes(queue, attributes)
    return {}


@action("AddPermission")
def add_permission(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    label = _label(params)
    accounts = opt_str_list(params, "AWSAccountIds") or []
    actions = opt_str_list(params, "Actions") or []
    if not accounts or any(not _ACCOUNT_ID.fullmatch(a) for a in accounts):
        raise invalid_value("PrincipalId", f"[{', '.join(accounts)}]", "Unable to verify.")
    if not actions:
        raise errors.missing_parameter("Actions")
    if len(actions) > MAX_PERMISSION_ACTIONS:
        raise errors.over_limit(
            f"{len(actions)} Actions were found, maximum allowed is {MAX_PERMISSION_ACTIONS}.")
    for name in actions:
        if name != "*" and name not in access.GRANTABLE:
            reason = ("Only the queue owner is allowed to invoke this action."
                      if access.is_sqs_action(name)
                      else "Please refer to the appropriate WSDL for a list of valid actions.")
            raise invalid_value("ActionName", f"SQS:{name}", reason)

    def edit(current: str) -> str:
        new = policy.add_statement(current, queue_arn=queue.arn, label=label,
                                   accounts=accounts, actions=actions)
        if new is None:
            raise invalid_value("Label", label, "Already exists.")
        if len(new.encode("utf-8")) > MAX_POLICY_BYTES:
            raise errors.over_limit(
                f"The policy would exceed the maximum size of {MAX_POLICY_BYTES} bytes.")
        return new

    svc.registry.edit_policy(queue, edit)
    return {}


@action("RemovePermission")
def remove_permission(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    label = _label(params)

    def edit(current: str) -> str:
        new = policy.remove_statement(current, label)
        if new is None:
            raise invalid_value("Label", label, "can't find label on existing policy.")
        return new

    svc.registry.edit_policy(queue, edit)
    return {}


def _label(params: dict[str, Any]) -> str:
    label = require_str(params, "Label")
    if not _LABEL.fullmatch(label):
        raise errors.invalid_parameter_value(
            "Label can only include alphanumeric characters, hyphens, or underscores. "
            "1 to 80 in length")
    return label


@action("DeleteQueue")
def delete_queue(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    svc.registry.delete(svc.queue(caller, params))
    return {}


@action("PurgeQueue")
def purge_queue(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    svc.registry.purge(svc.queue(caller, params))
    return {}


@action("ListDeadLetterSourceQueues")
def list_dead_letter_source_queues(
    svc: Actions, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    limit = opt_int(params, "MaxResults", 1, 1000)
    sources = svc.registry.sources_targeting(queue.account, queue.arn)
    return {"queueUrls": [q.url(caller.base_url) for q in sources[:limit or 1000]]}


@action("TagQueue")
def tag_queue(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    if params.get("Tags") is None or params.get("Tags") == {}:
        raise errors.missing_parameter("Tags")
    svc.registry.tag(queue, validate_tags(params.get("Tags"), queue_name=queue.name))
    return {}


@action("UntagQueue")
def untag_queue(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    svc.registry.untag(queue, validate_tag_keys(params.get("TagKeys")))
    return {}


@action("ListQueueTags")
def list_queue_tags(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    return {"Tags": dict(queue.tags)} if queue.tags else {}


# -- messages -------------------------------------------------------------------


def _outgoing(queue: Queue, params: dict[str, Any]) -> Outgoing:
    body = params.get("MessageBody")
    if body is None or body == "":
        raise errors.missing_parameter("MessageBody")
    if not isinstance(body, str):
        raise invalid_value("MessageBody", body, "Must be a string.")
    attributes = parse_message_attributes(params.get("MessageAttributes"))
    system = parse_message_system_attributes(params.get("MessageSystemAttributes"))
    validate_message_body(body, queue.int_attribute("MaximumMessageSize"), attributes)
    delay = opt_int(params, "DelaySeconds", 0, 900)
    group_id = opt_str(params, "MessageGroupId")
    dedup_id = opt_str(params, "MessageDeduplicationId")
    if group_id is not None:
        validate_fifo_id("MessageGroupId", group_id)
    if dedup_id is not None:
        validate_fifo_id("MessageDeduplicationId", dedup_id)
    if queue.fifo:
        if delay is not None and delay != 0:
            raise invalid_value(
                "DelaySeconds", delay,
                "The request include parameter that is not valid for this queue type.",
            )
        if not group_id:
            raise errors.missing_parameter("MessageGroupId")
        if dedup_id is None and queue.attributes.get("ContentBasedDeduplication") != "true":
            raise errors.invalid_parameter_value(
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly"
            )
        delay = None
    elif dedup_id is not None:
        raise invalid_value(
            "MessageDeduplicationId", dedup_id,
            "The request include parameter that is not valid for this queue type.",
        )
    return Outgoing(body, attributes, delay, group_id, dedup_id, system)


@action("SendMessage")
def send_message(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    return svc.messages.send(queue, _outgoing(queue, params), caller.account)


def _entry_size(entry: dict[str, Any]) -> int:
    body = entry.get("MessageBody")
    body = body if isinstance(body, str) else ""
    try:
        return message_size(body, parse_message_attributes(entry.get("MessageAttributes")))
    except errors.SqsError:
        return message_size(body)  # the entry fails on its own below


@action("SendMessageBatch")
def send_message_batch(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    entries = validate_batch_entries(params.get("Entries"))
    check_batch_size(_entry_size(entry) for entry in entries)
    if queue.fifo and any(not entry.get("MessageGroupId") for entry in entries):
        # AWS refuses the whole request here rather than fail the entry.
        raise errors.missing_parameter("MessageGroupId")
    outgoing: list[tuple[str, Outgoing]] = []
    failed: list[dict[str, object]] = []
    for entry in entries:
        try:
            outgoing.append((entry["Id"], _outgoing(queue, entry)))
        except errors.SqsError as err:
            failed.append(err.batch_entry(entry["Id"]))
    sent, refused = (
        svc.messages.send_many(queue, outgoing, caller.account) if outgoing else ([], [])
    )
    failed.extend(err.batch_entry(entry_id) for entry_id, err in refused)
    return _batch_result(sent, failed)


@action("ReceiveMessage")
def receive_message(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    max_messages = opt_int(params, "MaxNumberOfMessages", 1, 10) or 1
    visibility = opt_int(params, "VisibilityTimeout", 0, 43200)
    wait = opt_int(params, "WaitTimeSeconds", 0, 20, "Must be >= 0 and <= 20, if provided.")
    attempt_id = validate_receive_attempt_id(params.get("ReceiveRequestAttemptId"))
    system_names = (opt_str_list(params, "MessageSystemAttributeNames") or []) + (
        opt_str_list(params, "AttributeNames") or []
    )
    attribute_names = opt_str_list(params, "MessageAttributeNames") or []
    remaining = caller.remaining()
    if remaining is not None:  # never poll into the time needed to answer
        requested = queue.int_attribute("ReceiveMessageWaitTimeSeconds") if wait is None else wait
        wait = timeouts.long_poll_seconds(requested, remaining)
    messages = svc.messages.receive(
        queue,
        max_messages=max_messages,
        visibility_timeout=visibility,
        wait_seconds=wait,
        system_attribute_names=system_names,
        message_attribute_names=attribute_names,
        accept=svc.registry.accepts(queue),
        deadline=caller.deadline,
        attempt_id=attempt_id if queue.fifo else None,
    )
    return {"Messages": messages} if messages else {}


@action("DeleteMessage")
def delete_message(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    svc.messages.delete(queue, require_str(params, "ReceiptHandle"))
    return {}


@action("DeleteMessageBatch")
def delete_message_batch(svc: Actions, caller: Caller, params: dict[str, Any]) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    entries = validate_batch_entries(params.get("Entries"), operation="DeleteMessageBatch")
    handles: list[tuple[str, str]] = []
    failed: list[dict[str, object]] = []
    for entry in entries:
        try:
            handles.append((entry["Id"], require_str(entry, "ReceiptHandle")))
        except errors.SqsError as err:
            failed.append(err.batch_entry(entry["Id"]))
    refused = dict(svc.messages.delete_many(queue, handles)) if handles else {}
    failed.extend(err.batch_entry(entry_id) for entry_id, err in refused.items())
    successful = [{"Id": entry_id} for entry_id, _ in handles if entry_id not in refused]
    return _batch_result(successful, failed)


@action("ChangeMessageVisibility")
def change_message_visibility(
    svc: Actions, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    handle = require_str(params, "ReceiptHandle")
    timeout = require_int(params, "VisibilityTimeout", 0, 43200)
    svc.messages.change_visibility(queue, handle, timeout)
    return {}


@action("ChangeMessageVisibilityBatch")
def change_message_visibility_batch(
    svc: Actions, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    queue = svc.queue(caller, params)
    entries = validate_batch_entries(
        params.get("Entries"), operation="ChangeMessageVisibilityBatch"
    )
    successful, failed = [], []
    for entry in entries:
        try:
            timeout = require_int(entry, "VisibilityTimeout", 0, 43200)
            svc.messages.change_visibility(queue, require_str(entry, "ReceiptHandle"), timeout)
            successful.append({"Id": entry["Id"]})
        except errors.SqsError as err:
            if err.status >= 500:
                raise
            failed.append(err.batch_entry(entry["Id"]))
    return _batch_result(successful, failed)


# -- message move tasks ---------------------------------------------------------------


@action("StartMessageMoveTask")
def start_message_move_task(
    svc: Actions, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    source = require_str(params, "SourceArn")
    destination = opt_str(params, "DestinationArn") or None
    rate = opt_int(params, "MaxNumberOfMessagesPerSecond", 1, MAX_RATE)
    return {"TaskHandle": svc.moves_or_fail().start(caller.account, source, destination, rate)}


@action("CancelMessageMoveTask")
def cancel_message_move_task(
    svc: Actions, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    moved = svc.moves_or_fail().cancel(caller.account, require_str(params, "TaskHandle"))
    return {"ApproximateNumberOfMessagesMoved": moved}


@action("ListMessageMoveTasks")
def list_message_move_tasks(
    svc: Actions, caller: Caller, params: dict[str, Any]
) -> dict[str, Any]:
    source = require_str(params, "SourceArn")
    limit = opt_int(params, "MaxResults", 1, 10) or 1
    found = svc.moves_or_fail().list(caller.account, source, limit)
    return {"Results": [_task_entry(t) for t in found]} if found else {}


def _task_entry(task: MoveTask) -> dict[str, Any]:
    """A ListMessageMoveTasksResultEntry: members AWS leaves out stay out."""
    status = status_of(task)
    entry: dict[str, Any] = {}
    if status == RUNNING:  # AWS: the handle only while the task runs
        entry["TaskHandle"] = task_handle(task)
    entry["Status"] = status
    entry["SourceArn"] = task.source_arn
    if task.destination_arn is not None:
        entry["DestinationArn"] = task.destination_arn
    if task.rate is not None:
        entry["MaxNumberOfMessagesPerSecond"] = task.rate
    entry["ApproximateNumberOfMessagesMoved"] = task.moved
    entry["ApproximateNumberOfMessagesToMove"] = task.to_move
    if task.status == "FAILED" and task.failure:
        entry["FailureReason"] = task.failure
    entry["StartedTimestamp"] = task.started
    return entry


def _batch_result(successful: list[Any], failed: list[dict[str, object]]) -> dict[str, Any]:
    """A batch result as AWS writes it: ``Failed`` only when something failed."""
    out: dict[str, Any] = {"Successful": successful}
    if failed:
        out["Failed"] = failed
    return out
