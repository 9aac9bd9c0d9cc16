"""A sealed message as the backing store holds it: base64 inline, or a pointer to S3.

The backing body is base64 of the ESDK message (the disaster-recovery format); above
the inline limit the same bytes go to the payload store and the body is a pointer to
them (:mod:`chalicelib.storage.payloads`).
"""

from __future__ import annotations

import base64
import binascii
import logging

from chalicelib.domain.queues.records import Queue
from chalicelib.storage import payloads
from chalicelib.storage.errors import Denied, Gone, StorageError
from chalicelib.storage.ports import BackingMessage, MessageStore, PayloadStore

log = logging.getLogger("sealq.messages")

type Pointer = tuple[str, str]  # (bucket, key) of a body in the payload store


class Unreadable(Exception):
    """The stored body is neither base64 nor a pointer to an object sealq may read: the
    message's own fault, never the request's."""


class StoredMessages:
    """Writing, reading and handing back sealed messages in the backing store."""

    def __init__(self, store: MessageStore, payloads: PayloadStore, *, inline_limit: int) -> None:
        self.store = store
        self._payloads = payloads
        self._inline_limit = inline_limit

    def stored_form(self, sealed: bytes) -> tuple[str, Pointer | None]:
        """The backing body of a sealed message, and its S3 pointer when it has one."""
        stored = base64.b64encode(sealed).decode("ascii")
        if len(stored) <= self._inline_limit:
            return stored, None
        pointer = self._payloads.put(sealed)
        return payloads.pointer_text(*pointer), pointer

    def load(self, item: BackingMessage) -> bytes:
        """The sealed bytes of a backing message (from S3 when it is a pointer).

        Raises Unreadable when the body is neither base64 nor a pointer to an object
        the payload store hands over, StorageError when the payload store fails.

        S3 refuses (403) a missing key to a caller without ``s3:ListBucket`` and any
        object the role may not read (a pointer outside its bucket or prefix): like a
        missing one (404), that is this message's own fault, so it is quarantined and
        never fails the call. A transient fault still propagates (retryable).
        """
        pointer = payloads.parse_pointer(item.body)
        try:
            if pointer is not None:
                return self._payloads.get(*pointer)
            return base64.b64decode(item.body, validate=True)
        except Gone:
            raise Unreadable("its stored body is missing") from None
        except Denied:
            raise Unreadable("its stored body cannot be read") from None
        except (binascii.Error, ValueError):
            raise Unreadable("malformed stored body") from None

    def drop_payload(self, pointer: Pointer, whose: str) -> None:
        """Remove a payload no message points to any more; a failure leaves it for the
        bucket's lifecycle rule (it is sealed meanwhile)."""
        try:
            self._payloads.delete(*pointer)
        except StorageError as err:
            log.warning("payload of %s left for expiry: %s %s",
                        whose, type(err).__name__, err.code)

    def hand_back(self, queue: Queue, items: list[BackingMessage]) -> None:
        """Make messages the client (or a move task) will not take visible again at once."""
        for item in items:
            try:
                self.store.change_visibility(queue.backing_url, item.receipt_handle, 0)
            except StorageError as err:
                log.warning("could not hand back message %s: %s", item.message_id, err.code)
