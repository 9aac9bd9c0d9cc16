"""SQS's Lambda event, as an event source mapping hands it to a function, and its answer.

A trigger's function receives exactly what a mapping on an SQS queue would give it
(``Records[]`` with the opened body and attributes, ``eventSourceARN`` the sealq
queue's ARN), so existing SQS handlers, Powertools' batch processor among them, work
unchanged. The answer is read as Lambda reads a partial batch response.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from chalicelib.domain.results import Received
from chalicelib.protocol.md5 import md5_of_attributes, md5_of_body

# The system attributes a mapping's record carries (FIFO adds the last three).
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader", "DeadLetterQueueSourceArn", "SequenceNumber", "MessageGroupId",
    "MessageDeduplicationId",
)


def _attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda writes it (lower camel case, empty list members)."""
    out: dict[str, Any] = {}
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(bytes(value["BinaryValue"])).decode("ascii")
    else:
        out["stringValue"] = value["StringValue"]
    out["stringListValues"] = []
    out["binaryListValues"] = []
    out["dataType"] = value["DataType"]
    return out


def record(message: Received, *, queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records[]`` entry for an opened message of the queue ``queue_arn``."""
    out: dict[str, Any] = {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": {k: message.system[k] for k in RECORD_ATTRIBUTES if k in message.system},
        "messageAttributes": {name: _attribute(value)
                              for name, value in sorted(message.attributes.items())},
        "md5OfBody": md5_of_body(message.body),
    }
    if message.attributes:
        out["md5OfMessageAttributes"] = md5_of_attributes(message.attributes)
    out["eventSource"] = "aws:sqs"
    out["eventSourceARN"] = queue_arn
    out["awsRegion"] = region
    return out


def event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def failed_items(answer: Any, delivered: Collection[str]) -> set[str] | None:
    """The message ids a partial batch response reports failed; None when Lambda would
    count the whole batch failed (an answer it cannot read, an identifier empty, null
    or not in the batch). No answer, or an empty or null list, is full success."""
    if answer is None or answer == {} or answer == "":
        return set()
    if not isinstance(answer, dict):
        return None
    failures = answer.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for entry in failures:
        if not isinstance(entry, dict) or set(entry) != {"itemIdentifier"}:
            return None
        identifier = entry["itemIdentifier"]
        if not isinstance(identifier, str) or identifier not in delivered:
            return None
        failed.add(identifier)
    return failed


def batch_response(failed: Iterable[str]) -> dict[str, Any]:
    """What the delivery function answers its own mapping (ReportBatchItemFailures)."""
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
