"""End-to-end tests, and the helpers they share: SQS's documented MD5s, polling receives.

The MD5 of message attributes is computed here from AWS's documentation, not with
sealq's code, so the tests check sealq against the spec rather than against itself.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError


def md5_hex(data: str | bytes) -> str:
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_message_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """MD5OfMessageAttributes as AWS documents it: sorted names, length-prefixed fields."""
    digest = hashlib.md5()
    for name in sorted(attributes):
        attribute = attributes[name]
        data_type = attribute["DataType"]
        digest.update(_length_prefixed(name.encode()))
        digest.update(_length_prefixed(data_type.encode()))
        if data_type.startswith("Binary"):
            value = attribute["BinaryValue"]
            digest.update(b"\x02" + _length_prefixed(value))
        else:
            digest.update(b"\x01" + _length_prefixed(attribute["StringValue"].encode()))
    return digest.hexdigest()


def error_codes(err: ClientError) -> set[str]:
    """Both codes botocore reports: the JSON one (``__type``) and the legacy query one.

    With an ``x-amzn-query-error`` header, ``Code`` is the legacy code (e.g.
    ``AWS.SimpleQueueService.NonExistentQueue``) and ``QueryErrorCode`` the JSON one.
    """
    error = err.response["Error"]
    return {str(code) for code in (error.get("Code"), error.get("QueryErrorCode")) if code}


def receive(
    sqs: Any, queue_url: str, want: int = 1, timeout: float = 10.0, **kwargs: Any
) -> list[Any]:
    """Receive until ``want`` messages arrived or ``timeout`` passed; return what came.

    Short receives on a standard queue may legitimately come back empty, so a test
    expecting a message polls; one expecting none waits the whole ``timeout``.
    """
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, want - len(got)),
            WaitTimeSeconds=max(1, min(5, int(remaining))),
            **kwargs,
        )
        got.extend(response.get("Messages", []))
    return got
