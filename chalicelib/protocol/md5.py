"""The MD5 digests SQS returns with every message, computed over the plaintext.

boto3 ignores them, but the Java, Go, Ruby and JS SDKs recompute and compare them,
so the algorithm must match AWS's byte for byte.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from typing import Any

_STRING = b"\x01"  # transport type of String and Number (custom suffixes included)
_BINARY = b"\x02"


def md5_of_body(body: str) -> str:
    """Hex MD5 of the body's UTF-8 bytes (``MD5OfMessageBody`` / ``MD5OfBody``)."""
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attrs: Mapping[str, Mapping[str, Any]]) -> str:
    """Hex MD5 of message attributes as AWS documents it.

    ``attrs`` is normalized (see ``validation.parse_message_attributes``):
    ``BinaryValue`` is raw bytes. Pass only the attributes actually returned;
    callers omit the field when there are none (this returns the MD5 of nothing).
    """
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attrs):
        value = attrs[name]
        data_type: str = value["DataType"]
        digest.update(_length_prefixed(name.encode("utf-8")))
        digest.update(_length_prefixed(data_type.encode("utf-8")))
        if data_type.startswith("Binary"):
            digest.update(_BINARY)
            digest.update(_length_prefixed(bytes(value["BinaryValue"])))
        else:
            digest.update(_STRING)
            digest.update(_length_prefixed(str(value["StringValue"]).encode("utf-8")))
    return digest.hexdigest()


def md5_of_system_attributes(attrs: Mapping[str, Mapping[str, Any]]) -> str:
    """``MD5OfMessageSystemAttributes`` (e.g. ``AWSTraceHeader``): the same algorithm."""
    return md5_of_attributes(attrs)
