"""Send, receive, delete and change visibility of sealed messages over the backing store.

What is sealed is an envelope holding the body, the message attributes and the
sender, so attributes are never stored in the clear either (invariant 6). The
backing body is base64 of the ESDK message (the disaster-recovery format), or,
above the inline limit, a pointer to the same bytes in S3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib import errors, timeouts
from chalicelib.clock import SYSTEM_CLOCK, Clock
from chalicelib.crypto import handles
from chalicelib.crypto.sealing import Accept, Sealer, SealError
from chalicelib.domain.failures import key_service_error, storage_error
from chalicelib.domain.messages.rules import serialize_message_attributes
from chalicelib.domain.queues.registry import Queue
from chalicelib.keyservice.api import KEY_REFUSALS, KeyServiceError
from chalicelib.observability.metrics import NO_METRICS, QUARANTINED_MESSAGES, Metrics
from chalicelib.protocol.md5 import md5_of_attributes, md5_of_body, md5_of_system_attributes
from chalicelib.storage import payloads
from chalicelib.storage.errors import Gone, InvalidReceipt, NotInflight, Refused, StorageError
from chalicelib.storage.ports import (
    BackingMessage,
    MessageStore,
    PayloadStore,
    QuarantineStore,
    send_batches,
)
from chalicelib.storage.ports import (
    Outgoing as BackingOutgoing,
)
from chalicelib.storage.translate import classify

log = logging.getLogger("sealq.messages")

ENVELOPE_VERSION = 1
SYSTEM_ATTRIBUTES = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "MessageDeduplicationId",
    "MessageGroupId",
    "SequenceNumber",
    "DeadLetterQueueSourceArn",
    "AWSTraceHeader",
)


@dataclass(frozen=True)
class Outgoing:
    """A validated message to send: body, attributes (binary values as bytes)."""

    body: str
    attributes: dict[str, dict[str, Any]]
    delay: int | None = None
    group_id: str | None = None
    dedup_id: str | None = None
    # MessageSystemAttributes (only AWSTraceHeader), normalized like attributes.
    system: dict[str, dict[str, Any]] = field(default_factory=dict)


def _handle_error(err: StorageError, handle: str, operation: str) -> errors.SqsError:
    """What SQS answers when its store refuses a receipt handle."""
    if isinstance(err, InvalidReceipt):
        return errors.receipt_handle_is_invalid(handle)
    if isinstance(err, NotInflight):
        return errors.message_not_inflight()
    if isinstance(err, Refused):
        # Real SQS: a deleted message's handle (ChangeMessageVisibility), an expired
        # FIFO handle (DeleteMessage).
        reason = (
            "Message does not exist or is not available for visibility timeout change."
            if operation == "ChangeMessageVisibility"
            else "The receipt handle has expired."
        )
        return errors.invalid_parameter_value(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: {reason}"
        )
    return storage_error(err)


def _encode_envelope(message: Outgoing, sender: str, fifo: bool) -> bytes:
    """The sealed plaintext: body, attributes, sender and, when given, the trace header
    and (on a standard queue: fair queues) the group id, which SQS returns on receive."""
    envelope: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "body": message.body,
        "attributes": serialize_message_attributes(message.attributes),
        "sender": sender,
    }
    trace = message.system.get("AWSTraceHeader")
    if trace is not None:
        envelope["trace"] = trace["StringValue"]
    if message.group_id is not None and not fifo:
        envelope["group"] = message.group_id
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class _Envelope:
    body: str
    attributes: dict[str, dict[str, Any]]
    sender: str
    system: dict[str, str]  # AWSTraceHeader, a standard queue's MessageGroupId


def _decode_envelope(plaintext: bytes) -> _Envelope:
    envelope = json.loads(plaintext)
    if envelope.get("v") != ENVELOPE_VERSION:
        raise SealError("unknown envelope version")
    attributes: dict[str, dict[str, Any]] = {}
    for name, attr in envelope.get("attributes", {}).items():
        value = dict(attr)
        if "BinaryValue" in value:
            value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
        attributes[name] = value
    system = {}
    if isinstance(envelope.get("trace"), str):
        system["AWSTraceHeader"] = envelope["trace"]
    if isinstance(envelope.get("group"), str):
        system["MessageGroupId"] = envelope["group"]
    return _Envelope(envelope["body"], attributes, envelope.get("sender", ""), system)


def _select_attributes(
    attributes: dict[str, dict[str, Any]], names: list[str]
) -> dict[str, dict[str, Any]]:
    """SQS's MessageAttributeNames filter: ``All``, ``.*`` or ``*`` (everything),
    ``prefix.*`` (names starting with ``prefix``: ``Hel.*`` takes ``Hello`` and
    ``Help.Me``), or exact names."""
    if not names:
        return {}
    if "All" in names or ".*" in names or "*" in names:
        return dict(attributes)
    prefixes = [n[:-2] for n in names if n.endswith(".*")]
    exact = set(names)
    return {
        name: value
        for name, value in attributes.items()
        if name in exact or any(name.startswith(p) for p in prefixes)
    }


@dataclass(frozen=True)
class _Prepared:
    """A sealed message ready for the backing store."""

    stored: str
    pointer: tuple[str, str] | None
    delay: int | None
    group_id: str | None
    dedup_id: str | None
    result: dict[str, str]



class Messages:
    """The message operations of one handler container."""

    def __init__(
        self,
        sealer: Sealer,
        secret: Callable[[str], bytes],
        store: MessageStore,
        payloads: PayloadStore,
        quarantine: QuarantineStore,
        *,
        inline_limit: int,
        receive_limit: int,
        clock: Clock = SYSTEM_CLOCK,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._sealer = sealer
        self._metrics = metrics
        self._secret = secret  # name -> deployment secret, via the key service
        self._store = store
        self._payloads = payloads
        self._quarantine = quarantine
        self._clock = clock
        self._inline_limit = inline_limit
        self._receive_limit = receive_limit

    # -- sending --------------------------------------------------------------------

    def send(self, queue: Queue, message: Outgoing, sender: str) -> dict[str, str]:
        """Seal and store one message; returns SendMessage's result fields."""
        sent, failed = self.send_many(queue, [("0", message)], sender)
        if failed:
            raise failed[0][1]
        return {k: v for k, v in sent[0].items() if k != "Id"}

    def send_many(
        self, queue: Queue, entries: list[tuple[str, Outgoing]], sender: str
    ) -> tuple[list[dict[str, str]], list[tuple[str, errors.SqsError]]]:
        """Seal and store messages in as few backing calls as fit; per-entry results.

        A key-service failure fails the whole request; a backing-store refusal fails
        only its entries. Whatever fails, no S3 payload of an unsent message stays.
        """
        prepared: list[tuple[str, _Prepared]] = []
        settled: set[str] = set()
        try:
            for entry_id, message in entries:
                prepared.append((entry_id, self._prepare(queue, message, sender)))
            return self._store_prepared(queue, prepared, settled)
        finally:
            for entry_id, p in prepared:
                if entry_id not in settled and p.pointer is not None:
                    self._drop_payload(p.pointer)

    def _store_prepared(
        self, queue: Queue, prepared: list[tuple[str, _Prepared]], settled: set[str]
    ) -> tuple[list[dict[str, str]], list[tuple[str, errors.SqsError]]]:
        """Send in chunks; ``settled`` collects the ids that were sent."""
        successful: list[dict[str, str]] = []
        failed: list[tuple[str, errors.SqsError]] = []
        for chunk in send_batches(prepared, lambda item: len(item[1].stored)):
            outgoing = [
                BackingOutgoing(entry_id, p.stored, p.delay, p.group_id, p.dedup_id)
                for entry_id, p in chunk
            ]
            try:
                sent, refused = self._store.send_batch(queue.backing_url, outgoing)
            except StorageError as err:
                if not successful and len(chunk) == len(prepared):
                    raise storage_error(err) from None
                sent, refused = {}, {entry_id: err.code for entry_id, _ in chunk}
                chunk_error: errors.SqsError | None = storage_error(err)
            else:
                chunk_error = None
            for entry_id, p in chunk:
                if entry_id in sent:
                    settled.add(entry_id)
                    successful.append({"Id": entry_id, **p.result, **sent[entry_id]})
                else:
                    failed.append(
                        (entry_id, chunk_error or storage_error(classify("sqs", refused[entry_id])))
                    )
        return successful, failed

    def _drop_payload(self, pointer: tuple[str, str], whose: str = "an unsent message") -> None:
        try:
            self._payloads.delete(*pointer)
        except StorageError as err:
            # The bucket's lifecycle rule removes it later; it is sealed meanwhile.
            log.warning("payload of %s left for expiry: %s %s",
                        whose, type(err).__name__, err.code)

    def _prepare(self, queue: Queue, message: Outgoing, sender: str) -> _Prepared:
        dedup_id = message.dedup_id
        if queue.fifo and dedup_id is None:
            dedup_id = self._content_dedup_id(queue, message.body)
        try:
            sealed = self._sealer.seal(
                _encode_envelope(message, sender, queue.fifo),
                queue_arn=queue.arn,
                account=queue.account,
                cmk=queue.cmk,
                reuse_period=queue.int_attribute("KmsDataKeyReusePeriodSeconds"),
                queue_id=queue.queue_id,
            )
        except KeyServiceError as err:
            raise key_service_error(err) from None
        stored, pointer = self._stored_form(sealed)
        result = {"MD5OfMessageBody": md5_of_body(message.body)}
        if message.attributes:
            result["MD5OfMessageAttributes"] = md5_of_attributes(message.attributes)
        if message.system:
            result["MD5OfMessageSystemAttributes"] = md5_of_system_attributes(message.system)
        return _Prepared(
            stored=stored,
            pointer=pointer,
            delay=message.delay,
            group_id=message.group_id if queue.fifo else None,
            dedup_id=dedup_id,
            result=result,
        )

    def _stored_form(self, sealed: bytes) -> tuple[str, tuple[str, str] | None]:
        """The backing body of a sealed message: base64 inline, else an S3 pointer."""
        stored = base64.b64encode(sealed).decode("ascii")
        if len(stored) <= self._inline_limit:
            return stored, None
        pointer = self._payloads.put(sealed)
        return payloads.pointer_text(*pointer), pointer

    # -- moving (message move tasks) -------------------------------------------------

    def load_sealed(self, item: BackingMessage) -> bytes:
        """The sealed bytes of a backing message (from S3 when it is a pointer).

        Raises SealError when the body is neither base64 nor a pointer to an object.
        """
        pointer = payloads.parse_pointer(item.body)
        try:
            if pointer is not None:
                return self._payloads.get(*pointer)
            return base64.b64decode(item.body, validate=True)
        except Gone:
            raise SealError("its stored body is missing") from None
        except (binascii.Error, ValueError):
            raise SealError("malformed stored body") from None

    def reseal(
        self, sealed: bytes, accept: Accept, destination: Queue
    ) -> tuple[str, tuple[str, str] | None]:
        """Open a message and seal the same envelope (body, attributes, sender, trace)
        for ``destination``, under its key; (backing body, S3 pointer or None).

        Raises SealError when the message fails its checks, KeyServiceError as the key
        service reported it.
        """
        opened = self._sealer.open(sealed, accept=accept)
        try:
            _decode_envelope(opened.plaintext)
        except (ValueError, KeyError, TypeError, binascii.Error) as err:
            raise SealError(f"malformed ({type(err).__name__})") from None
        resealed = self._sealer.seal(
            opened.plaintext,
            queue_arn=destination.arn,
            account=destination.account,
            cmk=destination.cmk,
            reuse_period=destination.int_attribute("KmsDataKeyReusePeriodSeconds"),
            queue_id=destination.queue_id,
        )
        return self._stored_form(resealed)

    def quarantine(self, queue: Queue, item: BackingMessage, reason: str) -> None:
        """Take a message that fails its integrity checks out of ``queue`` for good."""
        self._to_quarantine(queue, item, reason)

    def drop_payload(self, pointer: tuple[str, str], whose: str) -> None:
        self._drop_payload(pointer, whose)

    def _content_dedup_id(self, queue: Queue, body: str) -> str:
        """A keyed hash of the body: equal bodies dedupe, yet the store learns nothing."""
        key = self._secret("content-deduplication")
        return hmac.new(
            key, queue.arn.encode() + b"\x00" + body.encode("utf-8"), hashlib.sha256
        ).hexdigest()

    # -- receiving ------------------------------------------------------------------

    def receive(
        self,
        queue: Queue,
        *,
        max_messages: int,
        visibility_timeout: int | None,
        wait_seconds: int | None,
        system_attribute_names: list[str],
        message_attribute_names: list[str],
        accept: Accept,
        attempt_id: str | None = None,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """Receive and open messages; one bad message never costs the others.

        - A message whose own key KMS refuses is left out and stays in the queue
          (its receive count and redrive policy apply); the ``Kms*`` error is
          returned only when every fetched message failed that way.
        - A message that fails its integrity checks goes to the quarantine.
        - A transient failure (KMS, key service, S3, DynamoDB) returns a retryable
          error, and every fetched message the client does not get is made visible
          again at once; so is whatever does not fit the response or the time left.

        ``accept(queue_arn, queue_id)`` says which queues' sealed messages may open
        here (this queue, and those that redrove into it). ``deadline`` is the
        monotonic time after which no further message is opened.
        """
        fetch = {"max_messages": max_messages, "visibility_timeout": visibility_timeout,
                 "attempt_id": attempt_id}
        out, refusals, fetched, quarantined = self._receive_round(
            queue, fetch, wait_seconds, system_attribute_names, message_attribute_names,
            accept, deadline,
        )
        if not out and quarantined:
            # Everything fetched was quarantined (a FIFO group's head, say): look once more
            # rather than answer empty while healthy messages wait behind it.
            out, refusals, fetched, _ = self._receive_round(
                queue, {**fetch, "attempt_id": None}, 0, system_attribute_names,
                message_attribute_names, accept, deadline,
            )
        if not out and refusals and len(refusals) == fetched:
            raise refusals[0]
        return out

    def _receive_round(
        self,
        queue: Queue,
        fetch: Mapping[str, Any],
        wait_seconds: int | None,
        system_attribute_names: list[str],
        message_attribute_names: list[str],
        accept: Accept,
        deadline: float | None,
    ) -> tuple[list[dict[str, Any]], list[errors.SqsError], int, int]:
        """One backing receive, opened; (shaped messages, KMS refusals, fetched, quarantined)."""
        raw = self._store.receive(queue.backing_url, wait_seconds=wait_seconds, **fetch)
        budget = self._receive_limit
        out: list[dict[str, Any]] = []
        returned: set[str] = set()
        kept: set[str] = set()  # refused by KMS: stay in flight, counted, redriven
        refusals: list[errors.SqsError] = []
        quarantined = 0
        try:
            for item in raw:
                if deadline is not None and out and (
                    deadline - time.monotonic() < timeouts.RECEIVE_RESERVE
                ):
                    break
                try:
                    opened = self._open(queue, item, accept)
                except _Refused as refused:
                    log.warning("message %s of %s: its key was refused (%s)", item.message_id,
                                queue.arn, refused.error.code)
                    kept.add(item.receipt_handle)
                    refusals.append(refused.error)
                    continue
                except _Tampered as tampered:
                    self._to_quarantine(queue, item, tampered.reason)
                    kept.add(item.receipt_handle)  # deleted from the queue, or retried
                    quarantined += 1
                    continue
                shaped = self._shape(opened, system_attribute_names, message_attribute_names)
                size = proxied_size(shaped)
                if size > budget and out:
                    break
                budget -= size
                out.append(shaped)
                returned.add(item.receipt_handle)
        except BaseException:
            returned.clear()  # the client gets an error, not these messages
            raise
        finally:
            self.hand_back(queue, [i for i in raw if i.receipt_handle not in returned | kept])
        return out, refusals, len(raw), quarantined

    def hand_back(self, queue: Queue, items: list[BackingMessage]) -> None:
        """Make messages the client (or a move task) will not take visible again at once."""
        for item in items:
            try:
                self._store.change_visibility(queue.backing_url, item.receipt_handle, 0)
            except StorageError as err:
                log.warning("could not hand back message %s: %s", item.message_id, err.code)

    def _to_quarantine(self, queue: Queue, item: BackingMessage, reason: str) -> None:
        """Move a message that failed its integrity checks out of its queue, for good.

        The record is the message as stored (sealed), so nothing leaks. If the move
        fails the error propagates (the message is handed back and tried again).
        """
        record = json.dumps({
            "queue_arn": queue.arn,
            "message_id": item.message_id,
            "quarantined_at": int(self._clock.now()),
            "reason": reason,
            "stored_body": item.body,
            "attributes": dict(item.attributes),
        }).encode()
        self._quarantine.put(queue.quarantine_id, item.message_id, record)
        self._metrics.add(QUARANTINED_MESSAGES)
        refused = self._store.delete_batch(queue.backing_url, {"q": item.receipt_handle})
        if refused:
            log.warning("quarantined message %s could not be removed: %s", item.message_id,
                        refused["q"])
        log.warning("message %s of %s quarantined: %s", item.message_id, queue.arn, reason)

    def _open(self, queue: Queue, item: BackingMessage, accept: Accept) -> dict[str, Any]:
        pointer = payloads.parse_pointer(item.body)
        try:
            if pointer is not None:
                sealed = self._payloads.get(*pointer)
            else:
                sealed = base64.b64decode(item.body, validate=True)
            opened = self._sealer.open(sealed, accept=accept)
            envelope = _decode_envelope(opened.plaintext)
        except KeyServiceError as err:
            if err.code in KEY_REFUSALS:  # about this message's own key
                raise _Refused(key_service_error_for_message(err)) from None
            raise key_service_error(err) from None
        except Gone:
            raise _Tampered("its stored body is missing") from None
        except SealError as err:
            raise _Tampered(str(err)) from None
        except (binascii.Error, ValueError, KeyError, TypeError) as err:
            raise _Tampered(f"malformed ({type(err).__name__})") from None
        handle = handles.issue(
            self._secret("receipt-handles"),
            queue.arn,
            handles.Receipt(item.receipt_handle, pointer),
            queue.queue_id,
        )
        # Only SQS's own names, with sealq's values: the backing store's ARNs and
        # principals never reach a client.
        system = {k: v for k, v in item.attributes.items() if k in SYSTEM_ATTRIBUTES}
        system.pop("AWSTraceHeader", None)
        system.update(envelope.system)
        system["SenderId"] = envelope.sender
        system.pop("DeadLetterQueueSourceArn", None)
        if opened.queue_arn != queue.arn or opened.queue_id != queue.queue_id:
            system["DeadLetterQueueSourceArn"] = opened.queue_arn
        return {
            "MessageId": item.message_id,
            "ReceiptHandle": handle,
            "Body": envelope.body,
            "attributes": envelope.attributes,
            "system": system,
        }

    @staticmethod
    def _shape(
        opened: dict[str, Any], system_names: list[str], attribute_names: list[str]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "MessageId": opened["MessageId"],
            "ReceiptHandle": opened["ReceiptHandle"],
            "MD5OfBody": md5_of_body(opened["Body"]),
            "Body": opened["Body"],
        }
        system: dict[str, str] = opened["system"]
        if "All" in system_names:
            chosen = dict(system)
        else:
            chosen = {k: system[k] for k in system_names if k in system}
        if chosen:
            message["Attributes"] = chosen
        selected = _select_attributes(opened["attributes"], attribute_names)
        if selected:
            message["MessageAttributes"] = serialize_message_attributes(selected)
            message["MD5OfMessageAttributes"] = md5_of_attributes(selected)
        return message

    # -- receipt handles --------------------------------------------------------------

    def _receipt(self, queue: Queue, handle: str) -> handles.Receipt:
        try:
            return handles.verify(
                self._secret("receipt-handles"), queue.arn, handle, queue.queue_id
            )
        except handles.InvalidHandle:
            raise errors.receipt_handle_is_invalid(handle) from None

    def delete(self, queue: Queue, handle: str) -> None:
        failed = self.delete_many(queue, [("0", handle)])
        if failed:
            raise failed[0][1]

    def delete_many(
        self, queue: Queue, entries: list[tuple[str, str]]
    ) -> list[tuple[str, errors.SqsError]]:
        """Delete by receipt handle in one backing call; returns the entries that failed."""
        failed: list[tuple[str, errors.SqsError]] = []
        receipts: dict[str, handles.Receipt] = {}
        given = dict(entries)
        for entry_id, handle in entries:
            try:
                receipts[entry_id] = self._receipt(queue, handle)
            except errors.SqsError as err:
                failed.append((entry_id, err))
        if not receipts:
            return failed
        try:
            refused = self._store.delete_batch(
                queue.backing_url, {i: r.backing_handle for i, r in receipts.items()}
            )
        except StorageError as err:
            raise storage_error(err) from None
        for entry_id, receipt in receipts.items():
            if entry_id in refused:
                refusal = classify("sqs", refused[entry_id])
                failed.append(
                    (entry_id, _handle_error(refusal, given[entry_id], "DeleteMessage"))
                )
            elif receipt.payload is not None:
                # After the message is gone: a failure here must not fail the delete
                # (the client would retry a delete that happened).
                self._drop_payload(receipt.payload, "a deleted message")
        return failed

    def change_visibility(self, queue: Queue, handle: str, timeout: int) -> None:
        receipt = self._receipt(queue, handle)
        try:
            self._store.change_visibility(queue.backing_url, receipt.backing_handle, timeout)
        except StorageError as err:
            raise _handle_error(err, handle, "ChangeMessageVisibility") from None


class _Refused(Exception):
    """KMS refuses this message's own key (disabled, deleted, denied, not its ciphertext)."""

    def __init__(self, error: errors.SqsError) -> None:
        super().__init__(error.code)
        self.error = error


class _Tampered(Exception):
    """The message fails its integrity checks here (forged, altered, bound elsewhere)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def key_service_error_for_message(err: KeyServiceError) -> errors.SqsError:
    """SQS's error for a message whose key is refused (InvalidCiphertext: KmsInvalidState...)."""
    if err.code == "InvalidCiphertext":
        return errors.kms_error("KmsInvalidKeyUsage", "The encrypted data key does not open.")
    return key_service_error(err)


def proxied_size(message: Mapping[str, Any]) -> int:
    """Bytes ``message`` adds to a ReceiveMessage response as API Gateway's Lambda proxy
    carries it: the SQS JSON is a string inside the proxy's JSON, so it is escaped a
    second time (every quote and backslash doubles, a control or non-ASCII character
    becomes a six-byte escape)."""
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    if text.isascii() and "\x7f" not in text:
        # Control characters are escaped already (all but DEL, which the second pass
        # would escape), so the second pass escapes only quotes and backslashes:
        # counted instead of encoded (a 64 KiB body's second dumps).
        return len(text) + 1 + text.count('"') + text.count("\\")
    return len(json.dumps(text)) - 1  # less the outer quotes, plus the comma between
