"""The contract between message handlers and the key service (the metadata service).

Handlers never call KMS. They ask the key service for a data key per (queue, CMK)
and for the plaintext of an encrypted data key found in a message header. The key
service answers over a transport (Lambda Invoke in AWS, an in-process call with a
real JSON round-trip locally); both run the same key-service code.

Wire format (JSON, one object per call)::

    {"op": "data_key", "queue_arn": str, "cmk": str, "context": {str: str},
     "reuse_period": int}
      -> {"ok": {"plaintext": b64, "encrypted": b64, "cmk_arn": str, "deadline": float}}
    {"op": "decrypt_key", "encrypted": b64, "cmk_arn": str, "context": {str: str}}
      -> {"ok": {"plaintext": b64}}
    {"op": "service_secret", "name": str}
      -> {"ok": {"plaintext": b64}}
    {"op": "seal_secret", "context": {"sealq:access-key-id": str}, "plaintext": b64}
      -> {"ok": {"sealed": b64}}      (an ESDK message under the default CMK)
    {"op": "open_secret", "context": {"sealq:access-key-id": str}, "sealed": b64}
      -> {"ok": {"plaintext": b64}}
    any failure
      -> {"error": {"code": str, "message": str}}

Any request may also carry ``"request_id": str``, the handler's request id (a UUID),
which the key service's log lines then carry; it changes nothing else.

``code`` is an SQS error code: KmsDisabled, KmsNotFound, KmsAccessDenied,
KmsInvalidState, KmsThrottled, KmsInvalidKeyUsage, KmsOptInRequired,
ServiceUnavailable (transient: retry), InternalFailure, or InvalidCiphertext (an
envelope or key that does not open under its context). Messages never contain key material.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# A transient failure (KMS or DynamoDB throttled, 5xx or timed out; the key service
# itself unreachable): the handler answers with a retryable error.
UNAVAILABLE = "ServiceUnavailable"
KMS_ERROR_CODES = frozenset(
    {
        "KmsDisabled",
        "KmsNotFound",
        "KmsAccessDenied",
        "KmsInvalidState",
        "KmsThrottled",
        "KmsInvalidKeyUsage",
        "KmsOptInRequired",
    }
)


def key_identity(*, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
    """sha256 over (cmk_arn, encrypted key, sorted context), length-prefixed so no two
    distinct inputs serialize alike; this is what a decrypted data key is cached under."""
    digest = hashlib.sha256()

    def part(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    part(cmk_arn.encode())
    part(encrypted)
    items = sorted(context.items())
    digest.update(len(items).to_bytes(8, "big"))
    for name, value in items:
        part(name.encode())
        part(value.encode())
    return digest.digest()


@dataclass(frozen=True)
class DataKey:
    """A data key for sealing. ``deadline`` is epoch seconds: never encrypt at or after it."""

    plaintext: bytes = field(repr=False)
    encrypted: bytes
    cmk_arn: str
    deadline: float


class ContextError(ValueError):
    """An envelope's context is not an access key's: the request is malformed."""


class KeyServiceError(Exception):
    """A failure the key service reports; ``code`` is an SQS error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# Refusals about a key itself (disabled, deleted, denied, not its ciphertext), which
# both tiers remember for REFUSAL_TTL seconds: a disabled or deleted key costs one KMS
# call per tier and window, not one per request (a queue full of messages under a
# disabled key would otherwise cost a Decrypt per message and receive). Throttling
# and outages are not remembered.
KEY_REFUSALS = frozenset({
    "KmsDisabled", "KmsNotFound", "KmsAccessDenied", "KmsInvalidState",
    "KmsInvalidKeyUsage", "KmsOptInRequired", "InvalidCiphertext",
})
# Long enough to spare KMS a burst, short enough that a key enabled again is used
# again almost at once.
REFUSAL_TTL = 5.0


def refusal_ttl(err: Exception) -> float | None:
    """How long a cache remembers ``err`` (see :data:`KEY_REFUSALS`); None: not at all."""
    if isinstance(err, KeyServiceError) and err.code in KEY_REFUSALS:
        return REFUSAL_TTL
    return None


class KeyService(Protocol):
    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        """The current data key of (queue_arn, cmk); generated under ``context``.

        ``cmk`` is what the queue was configured with (key id, ARN or alias);
        the returned ``cmk_arn`` is the key's ARN as KMS reported it.
        """
        ...

    def decrypt_key(
        self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]
    ) -> bytes:
        """The plaintext of an encrypted data key, decrypted under ``context``."""
        ...

    def service_secret(self, name: str) -> bytes:
        """A stable 32-byte secret of the deployment (e.g. for receipt-handle MACs).

        Created once (GenerateDataKey under the default CMK), stored only encrypted.
        """
        ...


@runtime_checkable
class SecretService(Protocol):
    """Sealing and opening access-key secrets; only the key service calls KMS for them."""

    def seal_secret(self, *, context: Mapping[str, str], plaintext: bytes) -> bytes: ...

    def open_secret(self, *, context: Mapping[str, str], sealed: bytes) -> bytes: ...


# The only context an access key's sealed secret may carry: the access key it belongs to.
ACCESS_KEY_CONTEXT = "sealq:access-key-id"


def secret_context(access_key_id: str) -> dict[str, str]:
    """The encryption context a key's secret is sealed under."""
    return {ACCESS_KEY_CONTEXT: access_key_id}
