"""The message actions: send, receive, delete and change visibility, one or a batch."""

from __future__ import annotations

from typing import Any

from chalicelib import errors, timeouts
from chalicelib.domain.context import Caller, Handler, Services, registrar
from chalicelib.domain.messages.receiving import ReceiveRequest
from chalicelib.domain.messages.rules import (
    check_batch_size,
    message_size,
    parse_message_attributes,
    parse_message_system_attributes,
    trace_header_value,
    validate_batch_entries,
    validate_fifo_id,
    validate_message_body,
    validate_receive_attempt_id,
)
from chalicelib.domain.params import opt_int, opt_str, opt_str_list, require_int, require_str
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.results import Batch, BatchFailure, OutgoingMessage, Received, Sent
from chalicelib.errors import invalid_value

ACTIONS: dict[str, Handler] = {}
action = registrar(ACTIONS)

NO_DEDUPLICATION = ("The queue should either have ContentBasedDeduplication enabled or "
                    "MessageDeduplicationId provided explicitly")


def _outgoing(queue: Queue, params: dict[str, Any], trace_header: str | None = None
              ) -> OutgoingMessage:
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
            raise errors.invalid_parameter_value(NO_DEDUPLICATION)
        delay = None
    elif dedup_id is not None:
        raise invalid_value(
            "MessageDeduplicationId", dedup_id,
            "The request include parameter that is not valid for this queue type.",
        )
    return OutgoingMessage(body, attributes, delay, group_id, dedup_id, system,
                           trace_header=trace_header_value(trace_header))


@action("SendMessage")
def send_message(svc: Services, caller: Caller, params: dict[str, Any]) -> Sent:
    queue = svc.queue(caller, params)
    return svc.sender.send(queue, _outgoing(queue, params, caller.trace_header), caller.account)


def _entry_size(entry: dict[str, Any]) -> int:
    body = entry.get("MessageBody")
    body = body if isinstance(body, str) else ""
    try:
        return message_size(body, parse_message_attributes(entry.get("MessageAttributes")))
    except errors.SqsError:
        return message_size(body)  # the entry fails on its own below


@action("SendMessageBatch")
def send_message_batch(svc: Services, caller: Caller, params: dict[str, Any]) -> Batch[Sent]:
    queue = svc.queue(caller, params)
    entries = validate_batch_entries(params.get("Entries"))
    check_batch_size(_entry_size(entry) for entry in entries)
    if queue.fifo:
        # AWS refuses the whole request for these rather than fail the entry (recorded).
        if any(not entry.get("MessageGroupId") for entry in entries):
            raise errors.invalid_parameter_value(
                "The request must contain the parameter MessageGroupId.")
        if queue.attributes.get("ContentBasedDeduplication") != "true" and any(
            entry.get("MessageDeduplicationId") is None for entry in entries
        ):
            raise errors.invalid_parameter_value(NO_DEDUPLICATION)
    outgoing: list[tuple[str, OutgoingMessage]] = []
    failed: list[BatchFailure] = []
    for entry in entries:
        try:
            outgoing.append((entry["Id"], _outgoing(queue, entry, caller.trace_header)))
        except errors.SqsError as err:
            failed.append(BatchFailure(entry["Id"], err))
    if not outgoing:
        return Batch([], failed)
    sent = svc.sender.send_many(queue, outgoing, caller.account)
    return Batch(sent.successful, failed + sent.failed)


@action("ReceiveMessage")
def receive_message(svc: Services, caller: Caller, params: dict[str, Any]) -> list[Received]:
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
    request = ReceiveRequest(
        max_messages=max_messages,
        visibility_timeout=visibility,
        wait_seconds=wait,
        system_attribute_names=system_names,
        message_attribute_names=attribute_names,
        attempt_id=attempt_id if queue.fifo else None,
    )
    return svc.receiver.receive(queue, request, budget=caller.budget, deadline=caller.deadline)


@action("DeleteMessage")
def delete_message(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    queue = svc.queue(caller, params)
    svc.receipts.delete(queue, require_str(params, "ReceiptHandle"))


@action("DeleteMessageBatch")
def delete_message_batch(svc: Services, caller: Caller, params: dict[str, Any]
                         ) -> Batch[None]:
    queue = svc.queue(caller, params)
    entries = validate_batch_entries(params.get("Entries"), operation="DeleteMessageBatch")
    handles: list[tuple[str, str]] = []
    failed: list[BatchFailure] = []
    for entry in entries:
        try:
            handles.append((entry["Id"], require_str(entry, "ReceiptHandle")))
        except errors.SqsError as err:
            failed.append(BatchFailure(entry["Id"], err))
    refused = svc.receipts.delete_many(queue, handles) if handles else []
    gone = {f.entry_id for f in refused}
    return Batch([(entry_id, None) for entry_id, _ in handles if entry_id not in gone],
                 failed + refused)


@action("ChangeMessageVisibility")
def change_message_visibility(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    queue = svc.queue(caller, params)
    handle = require_str(params, "ReceiptHandle")
    timeout = require_int(params, "VisibilityTimeout", 0, 43200)
    svc.receipts.change_visibility(queue, handle, timeout)


@action("ChangeMessageVisibilityBatch")
def change_message_visibility_batch(
    svc: Services, caller: Caller, params: dict[str, Any]
) -> Batch[None]:
    queue = svc.queue(caller, params)
    entries = validate_batch_entries(
        params.get("Entries"), operation="ChangeMessageVisibilityBatch"
    )
    successful: list[tuple[str, None]] = []
    failed: list[BatchFailure] = []
    for entry in entries:
        try:
            timeout = require_int(entry, "VisibilityTimeout", 0, 43200)
            svc.receipts.change_visibility(queue, require_str(entry, "ReceiptHandle"), timeout)
            successful.append((entry["Id"], None))
        except errors.SqsError as err:
            if err.status >= 500:
                raise
            failed.append(BatchFailure(entry["Id"], err))
    return Batch(successful, failed)
