"""The "what is stored" view: one queue's backing records as they are at rest.

Read without opening anything and without receiving: the embedded moto's own SQS
store is read in this process (``moto.backends``, the public backend models), so no
receive count grows, no visibility changes and no consumer misses a message. Each
record's ESDK header is parsed as :func:`chalicelib.crypto.sealing.bound_to` parses
it, with no key: its suite, encryption context, the CMK ARN of its one encrypted
data key, its frames. What is shown is what anyone who can read the store sees:
sizes, the header's clear fields and the first characters of the stored (sealed)
body; never a data key, not even encrypted.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from aws_encryption_sdk.internal.formatting.deserialize import (
    deserialize_frame,
    deserialize_header,
    deserialize_header_auth,
)

from chalicelib.crypto.stored_format import MALFORMED
from chalicelib.storage import payloads
from chalicelib.storage.errors import StorageError
from chalicelib.storage.ports import PayloadStore

# Records described per request, and the characters of a stored body shown.
LIMIT = 50
EXCERPT = 64


@dataclass(frozen=True)
class AtRest:
    """A backing message as the store holds it, and whether a consumer could see it now."""

    message_id: str
    body: str
    state: str  # "visible" or "in flight"
    sent: int | None  # epoch milliseconds
    receives: int


class StoreReader(Protocol):
    def records(self, backing_url: str) -> tuple[list[AtRest], str]:
        """The queue's visible and in-flight backing messages, and a note on what is not
        listed (delayed messages)."""
        ...


class MotoStore:
    """The SQS store of the moto running in this process (the dev server's embedded one,
    or a test's ``mock_aws``)."""

    def __init__(self, region: str) -> None:
        self._region = region

    def records(self, backing_url: str) -> tuple[list[AtRest], str]:
        from moto.backends import get_backend
        from moto.sqs.exceptions import QueueDoesNotExist

        account, name = urlsplit(backing_url).path.strip("/").split("/")[-2:]
        try:
            queue = get_backend("sqs")[account][self._region].get_queue(name)
        except QueueDoesNotExist:
            return [], "The backing queue is gone (the queue is being deleted)."
        seen: dict[str, AtRest] = {}
        for message in [*queue.messages, *queue.pending_messages]:
            if message.id in seen or message.delayed:
                continue
            seen[message.id] = AtRest(
                message_id=message.id, body=message.body,
                state="visible" if message.visible else "in flight",
                sent=message.sent_timestamp, receives=message.approximate_receive_count)
        found = sorted(seen.values(), key=lambda r: (r.sent or 0, r.message_id))
        return found, "Delayed messages are not listed until their delay ends."


def describe(sealed: bytes) -> dict[str, Any]:
    """The clear parts of an ESDK message: header fields, sizes, frames; no key is used."""
    stream = io.BytesIO(sealed)
    header, raw_header = deserialize_header(stream, max_encrypted_data_keys=1)
    deserialize_header_auth(header.version, stream, header.algorithm)
    header_bytes = stream.tell()
    frames = ciphertext = 0
    while True:
        frame, final = deserialize_frame(stream, header)
        frames += 1
        ciphertext += len(frame.ciphertext)
        if final:
            break
    keys = [{"provider": edk.key_provider.provider_id,
             "cmkArn": edk.key_provider.key_info.decode("utf-8", "replace"),
             "encryptedKeyBytes": len(edk.encrypted_data_key)}
            for edk in header.encrypted_data_keys]
    return {
        "formatVersion": int(header.version.value),
        "suite": header.algorithm.name,
        "suiteId": f"0x{header.algorithm.algorithm_id:04X}",
        "encryptionContext": dict(sorted(header.encryption_context.items())),
        "dataKeys": keys,
        "cmkArn": keys[0]["cmkArn"] if len(keys) == 1 else None,
        "headerBytes": header_bytes,
        "frameLength": header.frame_length,
        "frames": frames,
        "ciphertextBytes": ciphertext,
        "envelopeBytes": len(sealed),
        "trailingBytes": len(sealed) - stream.tell(),
    }


def record_view(record: AtRest, payload_store: PayloadStore) -> dict[str, Any]:
    """One record: where its sealed bytes are, and what their header says."""
    view: dict[str, Any] = {
        "messageId": record.message_id, "state": record.state, "sent": record.sent,
        "receives": record.receives, "storedBytes": len(record.body.encode("utf-8")),
        "storedExcerpt": record.body[:EXCERPT],
    }
    pointer = payloads.parse_pointer(record.body)
    try:
        if pointer is not None:
            view["location"] = {"form": "S3", "bucket": pointer[0], "key": pointer[1]}
            sealed = payload_store.get(*pointer)
        else:
            view["location"] = {"form": "inline"}
            sealed = base64.b64decode(record.body, validate=True)
    except StorageError as err:
        view["problem"] = f"its sealed body cannot be read ({err.code})"
        return view
    except (binascii.Error, ValueError):
        view["problem"] = "the stored body is neither base64 nor a pointer"
        return view
    try:
        view["envelope"] = describe(sealed)
    except MALFORMED as err:
        view["problem"] = f"not an ESDK message ({type(err).__name__})"
    return view


def stored_view(reader: StoreReader | None, backing_url: str, payload_store: PayloadStore,
                counts: dict[str, Any]) -> dict[str, Any]:
    """The queue's records at rest (``/console/api/stored/<account>/<queue>``)."""
    if reader is None:
        return {"available": False, "note": (
            "The stored view reads the embedded moto's store; with SEALQ_AWS_ENDPOINT set "
            "the backing queues are elsewhere (look there with that service's own tools).")}
    found, note = reader.records(backing_url)
    shown = found[:LIMIT]
    return {"available": True, "note": note, "counts": counts, "listed": len(found),
            "records": [record_view(r, payload_store) for r in shown]}

