"""Sealed bodies too large to sit inline in a backing message live in S3.

The object is the ESDK message itself (self-contained, like an inline one); the
backing message then carries only a pointer. Object keys are random, so they
reveal nothing about the queue or the content.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from chalicelib import aws, settings

POINTER_TAG = "sealq-s3"


def _s3() -> Any:
    return aws.client("s3")


def put(sealed: bytes) -> tuple[str, tuple[str, str]]:
    """Store a sealed body; returns the pointer text for the backing message and (bucket, key)."""
    bucket = settings.get().payload_bucket
    key = "payloads/" + secrets.token_hex(20)
    _s3().put_object(Bucket=bucket, Key=key, Body=sealed)
    pointer = json.dumps({POINTER_TAG: {"bucket": bucket, "key": key}}, separators=(",", ":"))
    return pointer, (bucket, key)


def parse_pointer(body: str) -> tuple[str, str] | None:
    """(bucket, key) when ``body`` is a pointer, else None (an inline body is base64)."""
    if not body.startswith("{"):
        return None
    try:
        ref = json.loads(body)[POINTER_TAG]
        return str(ref["bucket"]), str(ref["key"])
    except (ValueError, KeyError, TypeError):
        return None


def get(bucket: str, key: str) -> bytes:
    data: bytes = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def delete(bucket: str, key: str) -> None:
    _s3().delete_object(Bucket=bucket, Key=key)
