"""Receipt handles given to clients: encrypted and authenticated, so they are opaque and
cannot be forged.

A handle wraps the backing queue's receipt handle and, for large bodies, the S3
object to remove on delete. It is sealed with AES-256-GCM under a key derived
from a deployment secret (from the key service, never stored in the clear), with
the queue's ARN and incarnation as associated data: a forged, altered or
cross-queue handle fails authentication before anything is touched (invariant 8),
and a client learns nothing of the backing store from it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sq2."
_KEY_LABEL = b"sealq receipt handle v2 key\x00"
_NONCE_BYTES = 12


class InvalidHandle(Exception):
    """The handle is malformed, forged or belongs to another queue."""


@dataclass(frozen=True)
class Receipt:
    backing_handle: str
    payload: tuple[str, str] | None  # (bucket, key) of a body stored in S3


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aead(secret: bytes) -> AESGCM:
    return AESGCM(hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest())


def _associated(queue_arn: str, queue_id: str) -> bytes:
    return json.dumps([queue_arn, queue_id]).encode()


def issue(secret: bytes, queue_arn: str, receipt: Receipt, queue_id: str = "") -> str:
    body: dict[str, object] = {"h": receipt.backing_handle}
    if receipt.payload is not None:
        body["s"] = list(receipt.payload)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(secret).encrypt(
        nonce, json.dumps(body, separators=(",", ":")).encode(),
        _associated(queue_arn, queue_id),
    )
    return PREFIX + _b64(nonce + sealed)


def verify(secret: bytes, queue_arn: str, handle: str, queue_id: str = "") -> Receipt:
    """The receipt inside ``handle`` if it was issued for this queue; else InvalidHandle."""
    if not handle.startswith(PREFIX):
        raise InvalidHandle("malformed")
    try:
        raw = _unb64(handle[len(PREFIX):])
    except (binascii.Error, ValueError):
        raise InvalidHandle("malformed") from None
    if len(raw) <= _NONCE_BYTES:
        raise InvalidHandle("malformed")
    try:
        plain = _aead(secret).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated(queue_arn, queue_id)
        )
    except InvalidTag:
        raise InvalidHandle("forged, altered or issued for another queue") from None
    body = json.loads(plain)
    stored = body.get("s")
    return Receipt(
        backing_handle=str(body["h"]),
        payload=(str(stored[0]), str(stored[1])) if stored else None,
    )
