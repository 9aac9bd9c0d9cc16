"""Small secrets sealed by the key service in the message format (an ESDK message).

An access key's secret is stored only as such an envelope: the committing,
unsigned suite, one ``aws-kms`` EDK under the service's default CMK, and an
encryption context that binds it to its access key id. As with messages, the
stock SDK with a KMS key provider opens it without sealq. Only the key service
(which alone may call KMS) seals and opens them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import CommitmentPolicy
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
from chalicelib.crypto.stored_format import KMS_KEY_ARN, MALFORMED, PROVIDER_ID, SUITE
from chalicelib.keyservice.api import ACCESS_KEY_CONTEXT, ContextError, KeyServiceError
from chalicelib.keyservice.kms import INVALID_CIPHERTEXT, GeneratedKey, Kms

_REFUSED = "The sealed secret does not open under this context."
_CLIENT = aws_encryption_sdk.EncryptionSDKClient(
    commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, max_encrypted_data_keys=1
)


def check_context(context: Mapping[str, str]) -> dict[str, str]:
    """Envelopes are for access-key secrets only: the key service is no general oracle."""
    if set(context) != {ACCESS_KEY_CONTEXT} or not context[ACCESS_KEY_CONTEXT]:
        raise ContextError(f"an envelope's context is exactly {{{ACCESS_KEY_CONTEXT!r}: id}}")
    return dict(context)


class _Seal(CryptoMaterialsManager):
    def __init__(self, key: GeneratedKey, context: dict[str, str]) -> None:
        self._key = key
        self._context = context

    def get_encryption_materials(self, request: EncryptionMaterialsRequest) -> EncryptionMaterials:
        info = MasterKeyInfo(provider_id=PROVIDER_ID, key_info=self._key.key_arn.encode())
        return EncryptionMaterials(
            algorithm=SUITE,
            data_encryption_key=EsdkDataKey(
                key_provider=info, data_key=self._key.plaintext,
                encrypted_data_key=self._key.encrypted,
            ),
            encrypted_data_keys={
                EncryptedDataKey(key_provider=info, encrypted_data_key=self._key.encrypted)
            },
            encryption_context=dict(self._context),
        )

    def decrypt_materials(self, request: DecryptionMaterialsRequest) -> DecryptionMaterials:
        raise NotImplementedError


class _Open(CryptoMaterialsManager):
    def __init__(self, kms: Kms, context: dict[str, str]) -> None:
        self._kms = kms
        self._context = context

    def get_encryption_materials(self, request: EncryptionMaterialsRequest) -> EncryptionMaterials:
        raise NotImplementedError

    def decrypt_materials(self, request: DecryptionMaterialsRequest) -> DecryptionMaterials:
        edks = request.encrypted_data_keys
        if (request.algorithm is not SUITE or dict(request.encryption_context) != self._context
                or len(edks) != 1):
            raise KeyServiceError(INVALID_CIPHERTEXT, _REFUSED)
        (edk,) = edks
        arn = edk.key_provider.key_info.decode("ascii", "replace")
        if edk.key_provider.provider_id != PROVIDER_ID or not KMS_KEY_ARN.fullmatch(arn):
            raise KeyServiceError(INVALID_CIPHERTEXT, _REFUSED)
        plaintext = self._kms.decrypt(edk.encrypted_data_key, arn, self._context)
        return DecryptionMaterials(data_key=EsdkDataKey(
            key_provider=edk.key_provider, data_key=plaintext,
            encrypted_data_key=edk.encrypted_data_key,
        ))


def seal(kms: Kms, cmk: str, context: Mapping[str, str], plaintext: bytes) -> bytes:
    """An ESDK message of ``plaintext`` under a fresh data key of ``cmk``, bound to ``context``."""
    bound = check_context(context)
    key = kms.generate(cmk, bound)
    ciphertext, _ = _CLIENT.encrypt(
        source=plaintext, materials_manager=_Seal(key, bound), encryption_context=bound,
        algorithm=SUITE,
    )
    return bytes(ciphertext)


def open_envelope(kms: Kms, context: Mapping[str, str], sealed: bytes) -> bytes:
    """The plaintext of an envelope sealed under exactly ``context``; KMS checks the binding."""
    bound = check_context(context)
    source = io.BytesIO(sealed)
    try:
        plaintext = esdk_format.decrypt(_CLIENT, source, _Open(kms, bound))
    except KeyServiceError:
        raise
    except MALFORMED:
        raise KeyServiceError(INVALID_CIPHERTEXT, _REFUSED) from None
    return bytes(plaintext)
