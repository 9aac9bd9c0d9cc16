"""Receipt handles given to clients, authenticated so they cannot be forged.

A handle wraps the backing queue's receipt handle, the sealq queue it belongs to
and, for large bodies, the S3 object to remove on delete; an HMAC-SHA256 under a
deployment secret (from the key service, never stored in the clear) covers it
all. A forged, altered or cross-queue handle is rejected before anything is
touched (invariant 8).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

PREFIX = "sq1."
_DOMAIN = b"sealq receipt handle v1\x00"


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


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + payload, hashlib.sha256).digest()


def issue(secret: bytes, queue_arn: str, receipt: Receipt) -> str:
    body: dict[str, object] = {"q": queue_arn, "h": receipt.backing_handle}
    if receipt.payload is not None:
        body["s"] = list(receipt.payload)
    payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return PREFIX + _b64(payload) + "." + _b64(_mac(secret, payload))


def verify(secret: bytes, queue_arn: str, handle: str) -> Receipt:
    """The receipt inside ``handle`` if it was issued for ``queue_arn``; else InvalidHandle."""
    if not handle.startswith(PREFIX) or handle.count(".") != 2:
        raise InvalidHandle("malformed")
    encoded_payload, encoded_mac = handle[len(PREFIX):].split(".")
    try:
        payload = _unb64(encoded_payload)
        mac = _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        raise InvalidHandle("malformed") from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise InvalidHandle("bad signature")
    body = json.loads(payload)
    if body.get("q") != queue_arn:
        raise InvalidHandle("issued for another queue")
    stored = body.get("s")
    return Receipt(
        backing_handle=str(body["h"]),
        payload=(str(stored[0]), str(stored[1])) if stored else None,
    )
