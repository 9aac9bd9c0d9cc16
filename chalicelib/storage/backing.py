"""Backing SQS queues: one per sealq queue, holding only sealed messages.

Backing queues are named ``sealq-<random hex>`` (``.fifo`` kept for FIFO queues), so
neither the tenant's account nor the queue's name shows in the store. Their own
visibility, delay, retention and wait settings mirror the sealq queue's; their
maximum size is always SQS's largest, since sealed bodies are larger than plaintext.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from chalicelib import aws

BACKING_PREFIX = "sealq-"
# Attributes of the sealq queue that are mirrored on its backing queue.
MIRRORED_ATTRIBUTES = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
)
MAX_BATCH_BYTES = 1024 * 1024
COUNT_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class Outgoing:
    entry_id: str
    body: str
    delay: int | None = None
    group_id: str | None = None
    dedup_id: str | None = None


@dataclass(frozen=True)
class BackingMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]


def _sqs() -> Any:
    return aws.client("sqs")


def create_queue(
    fifo: bool, attributes: dict[str, str], redrive: dict[str, object] | None = None
) -> tuple[str, str]:
    """Create a new backing queue; returns (url, arn).

    ``redrive`` is the backing RedrivePolicy (its target a backing queue's ARN).
    """
    name = BACKING_PREFIX + secrets.token_hex(16) + (".fifo" if fifo else "")
    attrs = {k: v for k, v in attributes.items() if k in MIRRORED_ATTRIBUTES}
    if redrive is not None:
        attrs["RedrivePolicy"] = json.dumps(redrive)
    attrs["MaximumMessageSize"] = "1048576"
    if fifo:
        attrs["FifoQueue"] = "true"
    url = _sqs().create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    arn = _sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return url, arn


def set_attributes(
    url: str, attributes: dict[str, str], redrive: dict[str, object] | None = None
) -> None:
    """Mirror settable attributes; ``redrive`` {} removes the backing RedrivePolicy."""
    attrs = {k: v for k, v in attributes.items() if k in MIRRORED_ATTRIBUTES}
    if redrive is not None:
        attrs["RedrivePolicy"] = json.dumps(redrive) if redrive else ""
    if attrs:
        _sqs().set_queue_attributes(QueueUrl=url, Attributes=attrs)


def delete_queue(url: str) -> None:
    _sqs().delete_queue(QueueUrl=url)


def purge_queue(url: str) -> None:
    _sqs().purge_queue(QueueUrl=url)


def counts(url: str) -> dict[str, str]:
    return dict(
        _sqs().get_queue_attributes(QueueUrl=url, AttributeNames=list(COUNT_ATTRIBUTES))[
            "Attributes"
        ]
    )


def send_batch(
    url: str, entries: list[Outgoing]
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Send up to 10 sealed bodies in one call.

    Returns (sent: id -> {MessageId[, SequenceNumber]}, refused: id -> error code).
    """
    batch = []
    for entry in entries:
        item: dict[str, Any] = {"Id": entry.entry_id, "MessageBody": entry.body}
        if entry.delay is not None:
            item["DelaySeconds"] = entry.delay
        if entry.group_id is not None:
            item["MessageGroupId"] = entry.group_id
        if entry.dedup_id is not None:
            item["MessageDeduplicationId"] = entry.dedup_id
        batch.append(item)
    out = _sqs().send_message_batch(QueueUrl=url, Entries=batch)
    sent = {}
    for ok in out.get("Successful", []):
        result = {"MessageId": ok["MessageId"]}
        if "SequenceNumber" in ok:
            result["SequenceNumber"] = ok["SequenceNumber"]
        sent[ok["Id"]] = result
    refused = {bad["Id"]: bad.get("Code", "") for bad in out.get("Failed", [])}
    return sent, refused


def receive(
    url: str,
    *,
    max_messages: int,
    visibility_timeout: int | None,
    wait_seconds: int | None,
    attempt_id: str | None = None,
) -> list[BackingMessage]:
    kwargs: dict[str, Any] = {
        "QueueUrl": url,
        "MaxNumberOfMessages": max_messages,
        "MessageSystemAttributeNames": ["All"],
    }
    if visibility_timeout is not None:
        kwargs["VisibilityTimeout"] = visibility_timeout
    if wait_seconds is not None:
        kwargs["WaitTimeSeconds"] = wait_seconds
    if attempt_id is not None:
        kwargs["ReceiveRequestAttemptId"] = attempt_id
    out = _sqs().receive_message(**kwargs)
    return [
        BackingMessage(
            message_id=m["MessageId"],
            receipt_handle=m["ReceiptHandle"],
            body=m["Body"],
            attributes=dict(m.get("Attributes", {})),
        )
        for m in out.get("Messages", [])
    ]


def delete_batch(url: str, handles: dict[str, str]) -> dict[str, str]:
    """Delete up to 10 messages by backing receipt handle; returns id -> code of failures."""
    out = _sqs().delete_message_batch(
        QueueUrl=url, Entries=[{"Id": i, "ReceiptHandle": h} for i, h in handles.items()]
    )
    return {bad["Id"]: bad.get("Code", "") for bad in out.get("Failed", [])}


def change_visibility(url: str, receipt_handle: str, timeout: int) -> None:
    _sqs().change_message_visibility(
        QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout
    )
