"""Sealing and opening messages: aws-encryption-sdk messages fed by the tier-1 key cache.

A sealed message is a standard ESDK message (committing, unsigned suite; one
``aws-kms`` EDK whose key info is the CMK ARN), so the stock SDK with a KMS key
provider opens it with no sealq code (invariant 3). The encryption context binds
it to its queue (invariant 4); ``open`` checks that binding against the bindings the
caller passes in, before asking for a key: which queues' messages may open where is
the domain's knowledge (a queue, and those that redrove into it), handed over as values.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from aws_encryption_sdk.materials_managers import (
    DecryptionMaterials,
    DecryptionMaterialsRequest,
    EncryptionMaterials,
    EncryptionMaterialsRequest,
)
from aws_encryption_sdk.materials_managers.base import CryptoMaterialsManager
from aws_encryption_sdk.structures import DataKey as EsdkDataKey
from aws_encryption_sdk.structures import EncryptedDataKey, MasterKeyInfo

from chalicelib.crypto import stored_format as esdk_format
from chalicelib.crypto.keycache import HandlerKeyCache
from chalicelib.crypto.stored_format import KMS_KEY_ARN, MALFORMED, PROVIDER_ID, SUITE
from chalicelib.observability.metrics import NO_METRICS, SEALED_BYTES, Metrics

QUEUE_ARN_KEY = "sealq:queue-arn"
ACCOUNT_KEY = "sealq:account"
# The queue's incarnation: a queue deleted and created again under its name gets a
# new id, so what was sealed for the old one does not open in the new one.
QUEUE_ID_KEY = "sealq:queue-id"
_CONTEXT_KEYS = frozenset({QUEUE_ARN_KEY, ACCOUNT_KEY, QUEUE_ID_KEY})
# Messages sealed before queues had ids carry only these two.
_LEGACY_CONTEXT_KEYS = frozenset({QUEUE_ARN_KEY, ACCOUNT_KEY})
# One frame holds any SQS message (bodies are at most 1 MiB): 4 KiB frames (the
# SDK's default) make a 64 KiB body three times slower to seal and open.
FRAME_LENGTH = 1 << 20


class _Source(io.BytesIO):
    """Ciphertext whose read position survives the SDK closing it (trailing-byte check)."""

    def close(self) -> None:
        pass


def encryption_context(queue_arn: str, account: str, queue_id: str = "") -> dict[str, str]:
    """The context every message of the queue is sealed under, and nothing else."""
    if not queue_arn or not account:
        raise ValueError("queue_arn and account must be non-empty")
    context = {QUEUE_ARN_KEY: queue_arn, ACCOUNT_KEY: account}
    if queue_id:
        context[QUEUE_ID_KEY] = queue_id
    return context


class SealError(Exception):
    """A message failed to open: tampered, bound to another queue, wrong format.

    Messages name the check that failed, never plaintext or key material.
    """


@dataclass(frozen=True)
class Binding:
    """The queue a message is sealed for: its ARN and incarnation ("" before queue ids)."""

    queue_arn: str
    queue_id: str = ""


class NotBoundHere(SealError):
    """The message is sealed for a queue the caller did not name (checked before any key)."""

    def __init__(self, binding: Binding) -> None:
        super().__init__("message is bound to another queue")
        self.binding = binding


@dataclass(frozen=True)
class Opened:
    """An opened message and the queue it was sealed for (read from its header)."""

    plaintext: bytes = field(repr=False)
    queue_arn: str
    account: str
    queue_id: str = ""


class _SealMaterials(CryptoMaterialsManager):
    """Encryption materials for one seal: the cached data key of (queue, CMK)."""

    __slots__ = ("_keys", "_queue_arn", "_cmk", "_reuse_period", "_context")

    def __init__(
        self,
        keys: HandlerKeyCache,
        *,
        queue_arn: str,
        cmk: str,
        reuse_period: int,
        context: dict[str, str],
    ) -> None:
        self._keys = keys
        self._queue_arn = queue_arn
        self._cmk = cmk
        self._reuse_period = reuse_period
        self._context = context

    def get_encryption_materials(self, request: EncryptionMaterialsRequest) -> EncryptionMaterials:
        if request.encryption_context != self._context:
            # The EDK is bound to self._context; a different header context would
            # produce a message that KMS refuses to open.
            raise ValueError("encryption context differs from the sealing context")
        # Fetched here, right before the SDK encrypts, so the deadline check is fresh.
        key = self._keys.encryption_key(
            queue_arn=self._queue_arn,
            cmk=self._cmk,
            context=self._context,
            reuse_period=self._reuse_period,
        )
        info = MasterKeyInfo(provider_id=PROVIDER_ID, key_info=key.cmk_arn.encode())
        return EncryptionMaterials(
            algorithm=SUITE,
            data_encryption_key=EsdkDataKey(
                key_provider=info, data_key=key.plaintext, encrypted_data_key=key.encrypted
            ),
            encrypted_data_keys={
                EncryptedDataKey(key_provider=info, encrypted_data_key=key.encrypted)
            },
            encryption_context=dict(self._context),
        )

    def decrypt_materials(self, request: DecryptionMaterialsRequest) -> DecryptionMaterials:
        raise NotImplementedError("sealing materials do not decrypt")


class _OpenMaterials(CryptoMaterialsManager):
    """Decryption materials for one open: checks the header, then asks the key cache."""

    __slots__ = ("_keys", "_bound_to", "queue_arn", "account", "queue_id")

    def __init__(self, keys: HandlerKeyCache, bound_to: Collection[Binding]) -> None:
        self._keys = keys
        self._bound_to = bound_to
        self.queue_arn = ""
        self.account = ""
        self.queue_id = ""

    def get_encryption_materials(self, request: EncryptionMaterialsRequest) -> EncryptionMaterials:
        raise NotImplementedError("opening materials do not encrypt")

    def decrypt_materials(self, request: DecryptionMaterialsRequest) -> DecryptionMaterials:
        if request.algorithm is not SUITE:
            raise SealError("unexpected algorithm suite")
        context: Mapping[str, str] = request.encryption_context
        if context.keys() != _CONTEXT_KEYS and context.keys() != _LEGACY_CONTEXT_KEYS:
            raise SealError("unexpected encryption context")
        queue_arn, account = context[QUEUE_ARN_KEY], context[ACCOUNT_KEY]
        queue_id = context.get(QUEUE_ID_KEY, "")
        if Binding(queue_arn, queue_id) not in self._bound_to:
            raise NotBoundHere(Binding(queue_arn, queue_id))
        edks = request.encrypted_data_keys
        if len(edks) != 1:
            raise SealError("expected exactly one encrypted data key")
        (edk,) = edks
        if edk.key_provider.provider_id != PROVIDER_ID:
            raise SealError("unexpected key provider")
        try:
            cmk_arn = edk.key_provider.key_info.decode("ascii")
        except UnicodeDecodeError:
            raise SealError("malformed key ARN") from None
        if not KMS_KEY_ARN.fullmatch(cmk_arn):
            raise SealError("malformed key ARN")
        plaintext = self._keys.decryption_key(
            encrypted=edk.encrypted_data_key, cmk_arn=cmk_arn, context=context
        )
        self.queue_arn, self.account, self.queue_id = queue_arn, account, queue_id
        return DecryptionMaterials(
            data_key=EsdkDataKey(
                key_provider=edk.key_provider,
                data_key=plaintext,
                encrypted_data_key=edk.encrypted_data_key,
            )
        )


class Sealer:
    """Seals and opens messages; thread-safe, one per container (the SDK client is reused)."""

    def __init__(self, keys: HandlerKeyCache, metrics: Metrics = NO_METRICS) -> None:
        self._keys = keys
        self._metrics = metrics
        self._client: Any = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
            max_encrypted_data_keys=1,
        )

    def seal(
        self, plaintext: bytes, *, queue_arn: str, account: str, cmk: str, reuse_period: int,
        queue_id: str = "",
    ) -> bytes:
        """An ESDK message of ``plaintext`` bound to ``queue_arn``, under the queue's data key.

        Raises KeyServiceError (e.g. KmsDisabled) as the key service reported it.
        """
        context = encryption_context(queue_arn, account, queue_id)
        materials = _SealMaterials(
            self._keys, queue_arn=queue_arn, cmk=cmk, reuse_period=reuse_period, context=context
        )
        ciphertext, _header = self._client.encrypt(
            source=plaintext,
            materials_manager=materials,
            encryption_context=context,
            algorithm=SUITE,
            frame_length=FRAME_LENGTH,
        )
        self._metrics.add(SEALED_BYTES, len(ciphertext))
        return bytes(ciphertext)

    def open(self, ciphertext: bytes, *, bound_to: Collection[Binding]) -> Opened:
        """The plaintext of a sealed message if it is sealed for one of ``bound_to``.

        Raises NotBoundHere (naming its binding) when it is sealed for another queue,
        SealError for any other integrity failure (both checked before any key is
        fetched), KeyServiceError as the key service reported it.
        """
        if not isinstance(ciphertext, bytes | bytearray | memoryview):
            raise TypeError("ciphertext must be bytes")
        data = bytes(ciphertext)
        materials = _OpenMaterials(self._keys, bound_to)
        source = _Source(data)
        try:
            plaintext = esdk_format.decrypt(self._client, source, materials)
        except SealError:
            raise
        except MALFORMED as err:
            # Keep only the class: the SDK's texts may quote parsed header fields.
            raise SealError(f"message failed to open ({type(err).__name__})") from None
        if source.tell() != len(data):
            raise SealError("trailing bytes after the message")
        return Opened(
            plaintext=bytes(plaintext), queue_arn=materials.queue_arn, account=materials.account,
            queue_id=materials.queue_id,
        )


def bound_to(ciphertext: bytes) -> Binding:
    """The queue a sealed message's header names, read without a key.

    Unauthenticated until the message is opened: a hint of where the message belongs
    (a dead-letter queue's messages name their source queue), which the queue that
    finally opens it checks. Raises SealError when the header does not parse.
    """
    try:
        header, _raw = deserialize_header(io.BytesIO(bytes(ciphertext)), max_encrypted_data_keys=1)
    except MALFORMED as err:
        raise SealError(f"message header failed to parse ({type(err).__name__})") from None
    context: Mapping[str, str] = header.encryption_context
    if context.keys() != _CONTEXT_KEYS and context.keys() != _LEGACY_CONTEXT_KEYS:
        raise SealError("unexpected encryption context")
    return Binding(context[QUEUE_ARN_KEY], context.get(QUEUE_ID_KEY, ""))
