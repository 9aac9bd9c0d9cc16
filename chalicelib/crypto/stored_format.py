"""The stored format's fixed parts, shared by sealed messages and sealed secrets.

Both are plain AWS Encryption SDK messages: the committing, unsigned suite and one
``aws-kms`` encrypted data key whose key info is the CMK's ARN, so the stock SDK
with a KMS key provider opens either without sealq (invariant 3).
"""

from __future__ import annotations

import io
import re
import struct
from typing import IO, Any

from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError
from aws_encryption_sdk.identifiers import Algorithm
from cryptography.exceptions import InvalidTag

SUITE = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
PROVIDER_ID = "aws-kms"
KMS_KEY_ARN = re.compile(r"arn:[a-z0-9-]+:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9_-]+")
# What malformed input raises from inside the SDK besides its own errors (found by
# fuzzing: InvalidTag from frame bodies, UnicodeDecodeError from the context).
MALFORMED = (AWSEncryptionSDKClientError, InvalidTag, ValueError, struct.error)


def decrypt(client: Any, source: IO[bytes], materials: Any) -> bytes:
    """``client.decrypt``, quiet when it fails: the SDK's own ``with`` block logs a
    traceback for every refused message ("Error on closing"), and on Python 3.13 the
    decryptor's finalizer reports "Footer not read" again, on stderr, when it is
    collected. The failure itself reaches the caller; forged input must not flood logs."""
    decryptor = client.stream(mode="d", source=source, materials_manager=materials)
    try:
        plaintext = decryptor.read()
        decryptor.close()  # the SDK's check that the footer was read
    except BaseException:
        io.IOBase.close(decryptor)  # closed for the finalizer, without the SDK's check
        raise
    return bytes(plaintext)
