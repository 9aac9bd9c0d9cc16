"""Sealed bodies too large to sit inline in a backing message live in S3 (the payload store).

The object is the ESDK message itself (self-contained, like an inline one); the
backing message then carries only a pointer. Object keys are random, so they
reveal nothing about the queue or the content.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from chalicelib.storage.errors import Gone, StorageError
from chalicelib.storage.translate import translating

POINTER_TAG = "sealq-s3"
KEY_PREFIX = "payloads/"
_SERVICE = "s3"


def pointer_text(bucket: str, key: str) -> str:
    """What the backing message carries instead of an inline body."""
    return json.dumps({POINTER_TAG: {"bucket": bucket, "key": key}}, separators=(",", ":"))


def parse_pointer(body: str) -> tuple[str, str] | None:
    """(bucket, key) when ``body`` is a pointer, else None (an inline body is base64)."""
    if not body.startswith("{"):
        return None
    try:
        ref = json.loads(body)[POINTER_TAG]
        return str(ref["bucket"]), str(ref["key"])
    except (ValueError, KeyError, TypeError):
        return None


class S3PayloadStore:
    """The :class:`~chalicelib.storage.ports.PayloadStore` on an S3 bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def put(self, sealed: bytes) -> tuple[str, str]:
        key = KEY_PREFIX + secrets.token_hex(20)
        try:
            with translating(_SERVICE):
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=sealed)
        except Gone as err:  # no bucket: the deployment is broken, no queue is gone
            raise StorageError(_SERVICE, err.code) from None
        return self._bucket, key

    def get(self, bucket: str, key: str) -> bytes:
        with translating(_SERVICE):
            data: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return data

    def delete(self, bucket: str, key: str) -> None:
        with translating(_SERVICE):
            self._s3.delete_object(Bucket=bucket, Key=key)
