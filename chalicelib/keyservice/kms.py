"""The key service's only door to AWS KMS, and the map from KMS errors to SQS codes.

Every failure leaves here as a :class:`KeyServiceError` whose message is one of
the fixed strings below: KMS's own message (which may quote key ids or policy
text) never reaches a caller or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.keyservice.api import UNAVAILABLE, KeyServiceError
from chalicelib.observability.metrics import (
    FOR_DATA_KEYS,
    KMS_CALLS,
    KMS_THROTTLED,
    NO_METRICS,
    Metrics,
)
from chalicelib.storage.translate import is_transient

INTERNAL_FAILURE = "InternalFailure"
# Not an SQS code: the ciphertext does not open under this key and context (wrong
# queue, tampered header). The handler treats it as an integrity failure.
INVALID_CIPHERTEXT = "InvalidCiphertext"
INTERNAL_MESSAGE = "The request processing has failed because of an unknown error."
UNAVAILABLE_MESSAGE = "A dependency of the key service is temporarily unavailable."

# KMS error code -> (SQS error code, message).
_KMS_ERRORS: dict[str, tuple[str, str]] = {
    "DisabledException": ("KmsDisabled", "The KMS key is disabled."),
    "NotFoundException": ("KmsNotFound", "The KMS key was not found."),
    # KMS refuses a KeyId it could never hold (over 2,048 characters) as invalid input:
    # the only input of sealq's calls a tenant chooses is its queue's KmsMasterKeyId.
    "ValidationException": ("KmsNotFound", "The KMS key was not found."),
    "AccessDeniedException": (
        "KmsAccessDenied",
        "The caller doesn't have the required KMS access.",
    ),
    "KMSInvalidStateException": (
        "KmsInvalidState",
        "The state of the KMS key is not valid for this request.",
    ),
    "KeyUnavailableException": (
        "KmsInvalidState",
        "The KMS key is unavailable.",
    ),
    "ThrottlingException": ("KmsThrottled", "The request was denied due to request throttling."),
    "LimitExceededException": (
        "KmsThrottled",
        "The request was denied due to request throttling.",
    ),
    "RequestLimitExceeded": (
        "KmsThrottled",
        "The request was denied due to request throttling.",
    ),
    "InvalidKeyUsageException": (
        "KmsInvalidKeyUsage",
        "The KMS key cannot be used for this operation.",
    ),
    "IncorrectKeyException": (
        "KmsInvalidKeyUsage",
        "The KMS key does not match the encrypted data key.",
    ),
    "KMSOptInRequired": ("KmsOptInRequired", "KMS is not enabled for this account."),
    "InvalidCiphertextException": (
        INVALID_CIPHERTEXT,
        "The encrypted data key cannot be decrypted under this key and context.",
    ),
}


def map_error(err: Exception) -> KeyServiceError:
    """The SQS-coded error for a failed KMS call: transient ones (5xx, timeouts) become
ServiceUnavailable, anything else unknown InternalFailure."""
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        mapped = _KMS_ERRORS.get(code)
        if mapped is not None:
            return KeyServiceError(*mapped)
    if is_transient(err):
        return KeyServiceError(UNAVAILABLE, UNAVAILABLE_MESSAGE)
    return KeyServiceError(INTERNAL_FAILURE, INTERNAL_MESSAGE)


@dataclass(frozen=True)
class GeneratedKey:
    """A fresh data key: plaintext (memory only) and its KMS ciphertext under ``key_arn``."""

    plaintext: bytes = field(repr=False)
    encrypted: bytes
    key_arn: str


THROTTLED = "KmsThrottled"


class Kms:
    """GenerateDataKey and Decrypt with SQS-coded errors; the client is injected.

    Every call is counted (``KmsCalls`` by operation and ``purpose``, ``KmsThrottled``
    when KMS throttled it), failed ones included."""

    def __init__(self, client: Any, metrics: Metrics = NO_METRICS, purpose: str = FOR_DATA_KEYS
                 ) -> None:
        self._client = client
        self._metrics = metrics
        self._purpose = purpose

    def _failed(self, err: Exception) -> KeyServiceError:
        mapped = map_error(err)
        if mapped.code == THROTTLED:
            self._metrics.add(KMS_THROTTLED)
        return mapped

    def generate(self, cmk: str, context: Mapping[str, str]) -> GeneratedKey:
        """A new AES-256 data key under ``cmk`` (id, ARN or alias), bound to ``context``."""
        self._metrics.add(KMS_CALLS, Operation="GenerateDataKey", Purpose=self._purpose)
        try:
            resp = self._client.generate_data_key(
                KeyId=cmk, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        except (ClientError, BotoCoreError) as err:
            raise self._failed(err) from None
        return GeneratedKey(
            plaintext=resp["Plaintext"], encrypted=resp["CiphertextBlob"], key_arn=resp["KeyId"]
        )

    def decrypt(self, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
        """The plaintext of ``encrypted``; KMS checks it belongs to ``cmk_arn`` and ``context``."""
        self._metrics.add(KMS_CALLS, Operation="Decrypt", Purpose=self._purpose)
        try:
            resp = self._client.decrypt(
                CiphertextBlob=encrypted, KeyId=cmk_arn, EncryptionContext=dict(context)
            )
        except (ClientError, BotoCoreError) as err:
            raise self._failed(err) from None
        plaintext: bytes = resp["Plaintext"]
        return plaintext
