"""Receiving: fetch from the backing store, open, and hand back what the client does not get.

One bad message never costs the others (invariant 11):

- a message whose own key KMS refuses is left out and stays in the queue (its receive
  count and redrive policy apply); the ``Kms*`` error is returned only when every
  fetched message failed that way;
- a message that fails its integrity checks goes to the quarantine;
- a transient failure (KMS, key service, S3, DynamoDB) returns a retryable error, and
  every fetched message the client does not get is made visible again at once; so is
  whatever does not fit the response (the protocol's budget) or the time left.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib import errors, timeouts
from chalicelib.aws import service_model
from chalicelib.crypto import handles
from chalicelib.crypto.sealing import SealError
from chalicelib.domain.failures import key_service_error
from chalicelib.domain.messages import envelope
from chalicelib.domain.messages.envelope import MalformedEnvelope
from chalicelib.domain.messages.opening import Opener
from chalicelib.domain.messages.quarantine import Quarantine
from chalicelib.domain.messages.stored import StoredMessages, Unreadable
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.results import Budget, MessageAttributes, Received
from chalicelib.keyservice.api import KEY_REFUSALS, KeyServiceError
from chalicelib.storage import payloads
from chalicelib.storage.ports import BackingMessage

log = logging.getLogger("sealq.messages")


@dataclass(frozen=True)
class ReceiveRequest:
    """A ReceiveMessage, validated."""

    max_messages: int
    visibility_timeout: int | None = None
    wait_seconds: int | None = None
    # SQS's names in MessageSystemAttributeNames / AttributeNames, and MessageAttributeNames.
    system_attribute_names: list[str] = field(default_factory=list)
    message_attribute_names: list[str] = field(default_factory=list)
    attempt_id: str | None = None


def select_attributes(attributes: MessageAttributes, names: list[str]) -> MessageAttributes:
    """SQS's MessageAttributeNames filter: ``All``, ``.*`` or ``*`` (everything),
    ``prefix.*`` (names starting with ``prefix``: ``Hel.*`` takes ``Hello`` and
    ``Help.Me``), or exact names."""
    if not names:
        return {}
    if "All" in names or ".*" in names or "*" in names:
        return dict(attributes)
    prefixes = [n[:-2] for n in names if n.endswith(".*")]
    exact = set(names)
    return {name: value for name, value in attributes.items()
            if name in exact or any(name.startswith(p) for p in prefixes)}


class KeyRefused(Exception):
    """KMS refuses this message's own key (disabled, deleted, denied, not its ciphertext)."""

    def __init__(self, error: errors.SqsError) -> None:
        super().__init__(error.code)
        self.error = error


class Tampered(Exception):
    """The message fails its integrity checks here (forged, altered, bound elsewhere)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Round:
    """One backing receive, opened."""

    messages: list[Received]
    refusals: list[errors.SqsError]
    fetched: int
    quarantined: int


class Receiver:
    def __init__(self, opener: Opener, stored: StoredMessages, quarantine: Quarantine,
                 secret: Callable[[str], bytes]) -> None:
        self._opener = opener
        self._stored = stored
        self._quarantine = quarantine
        self._secret = secret

    def receive(self, queue: Queue, request: ReceiveRequest, *, budget: Budget | None = None,
                deadline: float | None = None) -> list[Received]:
        """Receive and open messages, as many as ``budget`` admits; ``deadline`` is the
        monotonic time after which no further message is opened."""
        fetch = {"max_messages": request.max_messages,
                 "visibility_timeout": request.visibility_timeout,
                 "attempt_id": request.attempt_id}
        first = self._round(queue, request, fetch, request.wait_seconds, budget, deadline)
        found = first
        if not first.messages and first.quarantined:
            # Everything fetched was quarantined (a FIFO group's head, say): look once more
            # rather than answer empty while healthy messages wait behind it.
            found = self._round(queue, request, {**fetch, "attempt_id": None}, 0, budget,
                                deadline)
        if not found.messages and found.refusals and len(found.refusals) == found.fetched:
            raise found.refusals[0]
        return found.messages

    def _round(self, queue: Queue, request: ReceiveRequest, fetch: Mapping[str, Any],
               wait_seconds: int | None, budget: Budget | None, deadline: float | None,
               ) -> _Round:
        raw = self._stored.store.receive(queue.backing_url, wait_seconds=wait_seconds, **fetch)
        out: list[Received] = []
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
                    message = select(self.open_one(queue, item), request)
                except KeyRefused as refused:
                    log.warning("message %s of %s: its key was refused (%s)", item.message_id,
                                queue.arn, refused.error.code)
                    kept.add(item.receipt_handle)
                    refusals.append(refused.error)
                    continue
                except Tampered as tampered:
                    self._quarantine.put(queue, item, tampered.reason)
                    kept.add(item.receipt_handle)  # deleted from the queue, or retried
                    quarantined += 1
                    continue
                if budget is not None and not budget.admit(message):
                    break
                out.append(message)
                returned.add(item.receipt_handle)
        except BaseException:
            returned.clear()  # the client gets an error, not these messages
            raise
        finally:
            self._stored.hand_back(
                queue, [i for i in raw if i.receipt_handle not in returned | kept])
        return _Round(out, refusals, len(raw), quarantined)

    def open_one(self, queue: Queue, item: BackingMessage) -> Received:
        """One backing message opened in ``queue``, with every system and message
        attribute; KeyRefused when KMS refuses its own key (it stays in the queue),
        Tampered when it fails its checks (for the quarantine), SqsError for a transient
        failure (the caller hands back what it fetched)."""
        try:
            sealed = self._stored.load(item)
            opened = self._opener.open(queue, sealed)
            found = envelope.decode(opened.plaintext)
        except KeyServiceError as err:
            if err.code in KEY_REFUSALS:  # about this message's own key
                raise KeyRefused(refused_key_error(err)) from None
            raise key_service_error(err) from None
        except (Unreadable, SealError, MalformedEnvelope) as err:
            raise Tampered(str(err)) from None
        handle = handles.issue(
            self._secret("receipt-handles"), queue.arn,
            handles.Receipt(item.receipt_handle, payloads.parse_pointer(item.body)),
            queue.queue_id,
        )
        # Only SQS's own names, with sealq's values: the backing store's ARNs and
        # principals never reach a client.
        known = service_model.names("MessageSystemAttributeName")
        system = {k: v for k, v in item.attributes.items() if k in known}
        system.pop("AWSTraceHeader", None)
        system.update(found.system)
        system["SenderId"] = found.sender
        system.pop("DeadLetterQueueSourceArn", None)
        if opened.queue_arn != queue.arn or opened.queue_id != queue.queue_id:
            system["DeadLetterQueueSourceArn"] = opened.queue_arn
        return Received(message_id=item.message_id, receipt_handle=handle, body=found.body,
                        attributes=found.attributes, system=system)


def select(message: Received, request: ReceiveRequest) -> Received:
    """``message`` with only the attributes ``request`` asked for."""
    names = request.system_attribute_names
    system = message.system
    chosen = dict(system) if "All" in names else {k: system[k] for k in names if k in system}
    return replace(message, system=chosen,
                   attributes=select_attributes(message.attributes,
                                                request.message_attribute_names))


def refused_key_error(err: KeyServiceError) -> errors.SqsError:
    """SQS's error for a message whose key is refused (InvalidCiphertext: KmsInvalidKeyUsage)."""
    if err.code == "InvalidCiphertext":
        return errors.kms_error("KmsInvalidKeyUsage", "The encrypted data key does not open.")
    return key_service_error(err)
