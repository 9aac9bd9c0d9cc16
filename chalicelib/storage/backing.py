"""Backing SQS queues (the message store's AWS adapter): one per sealq queue, sealed bodies only.

Backing queues are named ``<prefix><random hex>`` (``.fifo`` kept for FIFO queues), so
neither the tenant's account nor the queue's name shows in the store. Their own
visibility, delay, retention and wait settings mirror the sealq queue's; their
maximum size is always SQS's largest, since sealed bodies are larger than plaintext.
Every botocore failure leaves as a :class:`~chalicelib.storage.errors.StorageError`.
Calls go through the plain boto3 client, tuned only by its ``Config``
(:mod:`chalicelib.aws.clients`: keep-alive, pool size, standard retries, the timeouts of
:mod:`chalicelib.timeouts`).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.storage.errors import InvalidReceipt, NotInflight, Refused, StorageError
from chalicelib.storage.ports import MIRRORED_ATTRIBUTES, Accepted, BackingMessage, Outgoing
from chalicelib.storage.translate import classify, translating

log = logging.getLogger("sealq.storage")

BACKING_PREFIX = "sealq-"
_SERVICE = "sqs"


def _mirrored(attributes: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k in MIRRORED_ATTRIBUTES}


def _message_fields(entry: Outgoing) -> dict[str, Any]:
    """SendMessage's fields of one entry (a batch entry adds its Id)."""
    fields: dict[str, Any] = {"MessageBody": entry.body}
    if entry.delay is not None:
        fields["DelaySeconds"] = entry.delay
    if entry.group_id is not None:
        fields["MessageGroupId"] = entry.group_id
    if entry.dedup_id is not None:
        fields["MessageDeduplicationId"] = entry.dedup_id
    return fields


def _accepted(answer: Mapping[str, Any]) -> Accepted:
    sequence = answer.get("SequenceNumber")
    return Accepted(str(answer["MessageId"]), str(sequence) if sequence is not None else None)


def _refused(entry: Mapping[str, Any]) -> StorageError:
    return classify(_SERVICE, str(entry.get("Code", "")))


class SqsMessageStore:
    """The :class:`~chalicelib.storage.ports.MessageStore` on real (or emulated) SQS."""

    def __init__(self, client: Any, *, poll_client: Any = None, prefix: str = BACKING_PREFIX
                 ) -> None:
        self._sqs = client
        # ReceiveMessage's read outlasts a long poll.
        self._poll = poll_client if poll_client is not None else client
        self._prefix = prefix

    def create_queue(
        self, fifo: bool, attributes: Mapping[str, str], redrive: Mapping[str, object] | None
    ) -> tuple[str, str]:
        name = self._prefix + secrets.token_hex(16) + (".fifo" if fifo else "")
        attrs = _mirrored(attributes)
        if redrive:
            attrs["RedrivePolicy"] = json.dumps(redrive)
        attrs["MaximumMessageSize"] = "1048576"
        if fifo:
            attrs["FifoQueue"] = "true"
        with translating(_SERVICE):
            url: str = self._sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        try:
            with translating(_SERVICE):
                arn: str = self._sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn"]
                )["Attributes"]["QueueArn"]
        except StorageError:
            # The caller never learns this queue's URL, so nothing else could remove it.
            self._delete_quietly(url)
            raise
        return url, arn

    def _delete_quietly(self, url: str) -> None:
        try:
            with translating(_SERVICE):
                self._sqs.delete_queue(QueueUrl=url)
        except StorageError as err:
            log.warning("could not remove a backing queue whose creation failed: %s %s",
                        type(err).__name__, err.code)

    def set_attributes(
        self, url: str, attributes: Mapping[str, str], redrive: Mapping[str, object] | None
    ) -> None:
        attrs = _mirrored(attributes)
        if redrive is not None:
            attrs["RedrivePolicy"] = json.dumps(redrive) if redrive else ""
        if attrs:
            with translating(_SERVICE):
                self._sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)

    def get_attributes(self, url: str, names: Iterable[str]) -> dict[str, str]:
        with translating(_SERVICE):
            out = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
        return dict(out.get("Attributes", {}))

    def delete_queue(self, url: str) -> None:
        with translating(_SERVICE):
            self._sqs.delete_queue(QueueUrl=url)

    def purge(self, url: str) -> None:
        with translating(_SERVICE):
            self._sqs.purge_queue(QueueUrl=url)

    def send_batch(
        self, url: str, entries: list[Outgoing]
    ) -> tuple[dict[str, Accepted], dict[str, StorageError]]:
        if len(entries) == 1:
            return self._send_one(url, entries[0])
        batch = [{"Id": entry.entry_id, **_message_fields(entry)} for entry in entries]
        with translating(_SERVICE):
            out = self._sqs.send_message_batch(QueueUrl=url, Entries=batch)
        sent = {ok["Id"]: _accepted(ok) for ok in out.get("Successful", [])}
        refused = {bad["Id"]: _refused(bad) for bad in out.get("Failed", [])}
        return sent, refused

    def _send_one(
        self, url: str, entry: Outgoing
    ) -> tuple[dict[str, Accepted], dict[str, StorageError]]:
        """One message with SendMessage: the same request count as a batch of one, and
        less work for the store (a batch is parsed and answered per entry)."""
        with translating(_SERVICE):
            out = self._sqs.send_message(QueueUrl=url, **_message_fields(entry))
        return {entry.entry_id: _accepted(out)}, {}

    def receive(
        self,
        url: str,
        *,
        max_messages: int,
        visibility_timeout: int | None,
        wait_seconds: int | None,
        attempt_id: str | None,
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
        with translating(_SERVICE):
            out = self._poll.receive_message(**kwargs)
        return [
            BackingMessage(
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m["Body"],
                attributes=dict(m.get("Attributes", {})),
            )
            for m in out.get("Messages", [])
        ]

    def delete_batch(self, url: str, handles: Mapping[str, str]) -> dict[str, StorageError]:
        if len(handles) == 1:
            ((entry_id, handle),) = handles.items()
            try:
                with translating(_SERVICE):
                    self._sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
            except (InvalidReceipt, Refused, NotInflight) as err:
                return {entry_id: err}
            return {}
        with translating(_SERVICE):
            out = self._sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": i, "ReceiptHandle": h} for i, h in handles.items()]
            )
        return {bad["Id"]: _refused(bad) for bad in out.get("Failed", [])}

    def change_visibility(self, url: str, receipt_handle: str, timeout: int) -> None:
        with translating(_SERVICE):
            self._sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=timeout
            )
