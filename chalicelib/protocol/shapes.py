"""Results written as their action's output shape: one function per action.

An action returns a value (:mod:`chalicelib.domain.results`); its writer here turns
it into the output structure botocore's model names for that action, in the JSON
1.0 form (binary as base64 text). ``json10`` sends that as it is; ``query`` writes it
as XML from the same output shape. The MD5s SDKs check are computed here, over the
plaintext: of the body and attributes sent, of the attributes actually returned.
Members AWS leaves out when empty stay out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.domain.results import (
    Batch,
    BatchFailure,
    QueueUrls,
    Received,
    Result,
    Sent,
    TaskEntry,
    attributes_json,
)
from chalicelib.protocol.md5 import md5_of_attributes, md5_of_body, md5_of_system_attributes

type Output = dict[str, Any]


def sent(result: Sent) -> Output:
    """SendMessage's result, and a SendMessageBatch entry's (with its Id)."""
    message = result.message
    out: Output = {"MD5OfMessageBody": md5_of_body(message.body)}
    if message.attributes:
        out["MD5OfMessageAttributes"] = md5_of_attributes(message.attributes)
    if message.system:
        out["MD5OfMessageSystemAttributes"] = md5_of_system_attributes(message.system)
    out["MessageId"] = result.message_id
    if result.sequence_number is not None:
        out["SequenceNumber"] = result.sequence_number
    return out


def received(message: Received) -> Output:
    """One ``Message`` of a ReceiveMessage result."""
    out: Output = {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": md5_of_body(message.body),
        "Body": message.body,
    }
    if message.system:
        out["Attributes"] = dict(message.system)
    if message.attributes:
        out["MessageAttributes"] = attributes_json(message.attributes)
        out["MD5OfMessageAttributes"] = md5_of_attributes(message.attributes)
    return out


def _failure(failure: BatchFailure) -> Output:
    """A ``BatchResultErrorEntry``: batch results carry the legacy code."""
    error = failure.error
    return {"Id": failure.entry_id, "SenderFault": error.fault == "Sender",
            "Code": error.query_code, "Message": error.message}


def _batch(result: Batch[Any], entry: Callable[[Any], Output]) -> Output:
    out: Output = {"Successful": [{"Id": entry_id, **entry(value)}
                                  for entry_id, value in result.successful]}
    if result.failed:
        out["Failed"] = [_failure(f) for f in result.failed]
    return out


def _task(entry: TaskEntry) -> Output:
    """A ListMessageMoveTasksResultEntry."""
    task = entry.task
    out: Output = {}
    if entry.handle is not None:  # AWS: the handle only while the task runs
        out["TaskHandle"] = entry.handle
    out["Status"] = entry.status
    out["SourceArn"] = task.source_arn
    if task.destination_arn is not None:
        out["DestinationArn"] = task.destination_arn
    if task.rate is not None:
        out["MaxNumberOfMessagesPerSecond"] = task.rate
    out["ApproximateNumberOfMessagesMoved"] = task.moved
    out["ApproximateNumberOfMessagesToMove"] = task.to_move
    if task.status == "FAILED" and task.failure:
        out["FailureReason"] = task.failure
    out["StartedTimestamp"] = task.started
    return out


def _urls(member: str) -> Callable[[QueueUrls], Output]:
    def write(result: QueueUrls) -> Output:
        out: Output = {member: result.urls} if result.urls else {}  # AWS leaves [] out
        if result.next_token is not None:
            out["NextToken"] = result.next_token
        return out

    return write


def _nonempty(member: str, values: Mapping[str, str]) -> Output:
    return {member: dict(values)} if values else {}


_WRITERS: dict[str, Callable[[Any], Output]] = {
    "CreateQueue": lambda r: {"QueueUrl": r.url},
    "GetQueueUrl": lambda r: {"QueueUrl": r.url},
    "ListQueues": _urls("QueueUrls"),
    "ListDeadLetterSourceQueues": lambda r: {"queueUrls": r.urls},
    "GetQueueAttributes": lambda r: _nonempty("Attributes", r.values),
    "ListQueueTags": lambda r: _nonempty("Tags", r.tags),
    "SendMessage": sent,
    "SendMessageBatch": lambda r: _batch(r, sent),
    "DeleteMessageBatch": lambda r: _batch(r, lambda _: {}),
    "ChangeMessageVisibilityBatch": lambda r: _batch(r, lambda _: {}),
    "StartMessageMoveTask": lambda r: {"TaskHandle": r.handle},
    "CancelMessageMoveTask": lambda r: {"ApproximateNumberOfMessagesMoved": r.moved},
    "ListMessageMoveTasks": lambda r: {"Results": [_task(e) for e in r.entries]}
    if r.entries else {},
}
def output(action: str, result: Result, *,
           written: Callable[[Received], Output] = received) -> Output:
    """``result`` as ``action``'s output structure (empty for an action with none).

    ``written`` gives a received message's structure (the budget's, which wrote each
    one to measure it: not written twice)."""
    if action == "ReceiveMessage":
        assert isinstance(result, list)
        return {"Messages": [written(m) for m in result]} if result else {}
    writer = _WRITERS.get(action)
    if writer is None:
        return {}
    return writer(result)
