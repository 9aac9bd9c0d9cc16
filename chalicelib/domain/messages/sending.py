"""Sending: seal each message under its queue's data key and store it, in as few backing
calls as fit; and resealing a message for another queue (message move tasks).

A key-service failure fails the whole request; a backing-store refusal fails only its
entries. Whatever fails, no S3 payload of an unsent message stays behind.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.crypto.sealing import Sealer
from chalicelib.domain.failures import key_service_error, storage_error
from chalicelib.domain.messages import envelope
from chalicelib.domain.messages.opening import Opener
from chalicelib.domain.messages.stored import Pointer, StoredMessages
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.results import Batch, BatchFailure, OutgoingMessage, Sent
from chalicelib.errors import SqsError
from chalicelib.keyservice.api import KeyServiceError
from chalicelib.storage.errors import StorageError
from chalicelib.storage.ports import Outgoing, send_batches


@dataclass(frozen=True)
class _Prepared:
    """A sealed message ready for the backing store."""

    entry_id: str
    message: OutgoingMessage
    stored: str
    pointer: Pointer | None
    group_id: str | None
    dedup_id: str | None


class Sender:
    def __init__(self, sealer: Sealer, stored: StoredMessages, opener: Opener,
                 secret: Callable[[str], bytes]) -> None:
        self._sealer = sealer
        self._stored = stored
        self._opener = opener
        self._secret = secret  # name -> deployment secret, via the key service

    def send(self, queue: Queue, message: OutgoingMessage, sender: str) -> Sent:
        """Seal and store one message."""
        batch = self.send_many(queue, [("0", message)], sender)
        if batch.failed:
            raise batch.failed[0].error
        return batch.successful[0][1]

    def send_many(
        self, queue: Queue, entries: list[tuple[str, OutgoingMessage]], sender: str
    ) -> Batch[Sent]:
        """Seal and store messages; each entry's result or failure."""
        prepared: list[_Prepared] = []
        settled: set[str] = set()
        try:
            for entry_id, message in entries:
                prepared.append(self._prepare(queue, entry_id, message, sender))
            return self._store_prepared(queue, prepared, settled)
        finally:
            for p in prepared:
                if p.entry_id not in settled and p.pointer is not None:
                    self._stored.drop_payload(p.pointer, "an unsent message")

    def _store_prepared(
        self, queue: Queue, prepared: list[_Prepared], settled: set[str]
    ) -> Batch[Sent]:
        """Send in chunks; ``settled`` collects the ids that were sent."""
        successful: list[tuple[str, Sent]] = []
        failed: list[BatchFailure] = []
        for chunk in send_batches(prepared, lambda p: len(p.stored)):
            outgoing = [Outgoing(p.entry_id, p.stored, p.message.delay, p.group_id, p.dedup_id)
                        for p in chunk]
            chunk_error: SqsError | None = None
            try:
                sent, refused = self._stored.store.send_batch(queue.backing_url, outgoing)
            except StorageError as err:
                if not successful and len(chunk) == len(prepared):
                    raise storage_error(err) from None
                sent, refused, chunk_error = {}, {}, storage_error(err)
            for p in chunk:
                if p.entry_id in sent:
                    settled.add(p.entry_id)
                    accepted = sent[p.entry_id]
                    successful.append((p.entry_id, Sent(p.message, accepted.message_id,
                                                        accepted.sequence_number)))
                else:
                    error = chunk_error or storage_error(refused[p.entry_id])
                    failed.append(BatchFailure(p.entry_id, error))
        return Batch(successful, failed)

    def _prepare(
        self, queue: Queue, entry_id: str, message: OutgoingMessage, sender: str
    ) -> _Prepared:
        dedup_id = message.dedup_id
        if queue.fifo and dedup_id is None:
            dedup_id = self._content_dedup_id(queue, message.body)
        sealed = self._seal(queue, envelope.encode(message, sender, queue.fifo))
        stored, pointer = self._stored.stored_form(sealed)
        return _Prepared(entry_id, message, stored, pointer,
                         message.group_id if queue.fifo else None, dedup_id)

    def _seal(self, queue: Queue, plaintext: bytes) -> bytes:
        try:
            return self._sealer.seal(
                plaintext, queue_arn=queue.arn, account=queue.account, cmk=queue.cmk,
                reuse_period=queue.int_attribute("KmsDataKeyReusePeriodSeconds"),
                queue_id=queue.queue_id,
            )
        except KeyServiceError as err:
            raise key_service_error(err) from None

    def reseal(self, source: Queue, sealed: bytes, destination: Queue
               ) -> tuple[str, Pointer | None]:
        """Open a message of ``source`` and seal the same envelope (body, attributes,
        sender, trace) for ``destination``, under its key; (backing body, pointer).

        Raises SealError or MalformedEnvelope when the message fails its checks,
        KeyServiceError as the key service reported it.
        """
        opened = self._opener.open(source, sealed)
        envelope.decode(opened.plaintext)  # only what is an envelope moves
        resealed = self._sealer.seal(
            opened.plaintext, queue_arn=destination.arn, account=destination.account,
            cmk=destination.cmk,
            reuse_period=destination.int_attribute("KmsDataKeyReusePeriodSeconds"),
            queue_id=destination.queue_id,
        )
        return self._stored.stored_form(resealed)

    def _content_dedup_id(self, queue: Queue, body: str) -> str:
        """A keyed hash of the body: equal bodies dedupe, yet the store learns nothing."""
        key = self._secret("content-deduplication")
        return hmac.new(
            key, queue.arn.encode() + b"\x00" + body.encode("utf-8"), hashlib.sha256
        ).hexdigest()
