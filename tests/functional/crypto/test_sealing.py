"""Sealing and opening messages: format, deadlines, queue binding, disaster recovery."""

from __future__ import annotations

import io
import logging
import os

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from aws_encryption_sdk.structures import MessageHeader

from chalicelib.clock import FakeClock
from chalicelib.crypto.keycache import HandlerKeyCache
from chalicelib.crypto.sealing import Binding, Opened, Sealer, SealError, encryption_context
from chalicelib.keyservice.api import KeyServiceError
from tests.key_services import DEFAULT_CMK, QUEUE_A, QUEUE_B, REUSE, KmsKeyService

ACCOUNT = "000000000000"
DLQ = "arn:aws:sqs:us-east-1:000000000000:a-dlq"


@pytest.fixture
def cmk_arn(default_cmk: str) -> str:
    """moto KMS with the default CMK under its alias; its ARN."""
    return default_cmk


@pytest.fixture
def service(cmk_arn: str, clock: FakeClock) -> KmsKeyService:
    return KmsKeyService(clock)


@pytest.fixture
def sealer(service: KmsKeyService, clock: FakeClock) -> Sealer:
    return Sealer(HandlerKeyCache(service, clock=clock, max_entries=16, decrypt_ttl=600))


@pytest.fixture
def consumer_service(cmk_arn: str, clock: FakeClock) -> KmsKeyService:
    """The key service as seen from another (cold) handler container."""
    return KmsKeyService(clock)


@pytest.fixture
def consumer(consumer_service: KmsKeyService, clock: FakeClock) -> Sealer:
    return Sealer(HandlerKeyCache(consumer_service, clock=clock, max_entries=16, decrypt_ttl=600))


def seal(sealer: Sealer, body: bytes = b"hello", queue_arn: str = QUEUE_A) -> bytes:
    return sealer.seal(
        body, queue_arn=queue_arn, account=ACCOUNT, cmk=DEFAULT_CMK, reuse_period=REUSE
    )


def only_queue(queue_arn: str) -> set[Binding]:
    return {Binding(queue_arn)}


def header_of(ciphertext: bytes) -> MessageHeader:
    header, _raw = deserialize_header(io.BytesIO(ciphertext))
    return header


def edk_of(ciphertext: bytes) -> bytes:
    (edk,) = header_of(ciphertext).encrypted_data_keys
    return bytes(edk.encrypted_data_key)


def test_encryption_context_names_the_queue_and_account_only():
    assert encryption_context(QUEUE_A, ACCOUNT) == {
        "sealq:queue-arn": QUEUE_A,
        "sealq:account": ACCOUNT,
    }
    with pytest.raises(ValueError):
        encryption_context("", ACCOUNT)


def test_sealed_message_opens_for_its_queue(sealer):
    opened = sealer.open(seal(sealer, b"secret body"), bound_to=only_queue(QUEUE_A))
    assert opened == Opened(plaintext=b"secret body", queue_arn=QUEUE_A, account=ACCOUNT)
    assert "secret body" not in repr(opened)


def test_header_has_the_committing_unsigned_suite_and_one_aws_kms_edk(sealer, cmk_arn):
    header = header_of(seal(sealer))
    assert header.algorithm is Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    assert header.encryption_context == encryption_context(QUEUE_A, ACCOUNT)
    (edk,) = header.encrypted_data_keys
    assert edk.key_provider.provider_id == "aws-kms"
    assert edk.key_provider.key_info == cmk_arn.encode()


def test_seals_with_a_new_key_once_the_deadline_is_reached(sealer, service, clock):
    first = edk_of(seal(sealer))
    clock.advance(REUSE - 0.001)
    assert edk_of(seal(sealer)) == first
    clock.advance(0.001)
    assert edk_of(seal(sealer)) != first
    assert service.data_key_calls == 2


def test_never_seals_with_a_key_the_service_set_in_the_past(sealer, service):
    service.deadline_offsets = [-1.0]
    edk = edk_of(seal(sealer))
    assert edk == service.issued[1].encrypted != service.issued[0].encrypted


def test_warm_path_asks_the_key_service_once_for_a_thousand_messages(sealer, service):
    bodies = [f"message {n}".encode() for n in range(1000)]
    sealed = [seal(sealer, body) for body in bodies]
    opened = [sealer.open(message, bound_to=only_queue(QUEUE_A)).plaintext for message in sealed]
    assert opened == bodies
    assert service.data_key_calls == 1
    assert service.decrypt_calls == 0


@pytest.mark.parametrize("size", [0, 1024, 64 * 1024, (1 << 20) + 1])
def test_stock_sdk_with_the_kms_provider_opens_a_sealed_message(sealer, cmk_arn, size):
    """Invariant 3: disaster recovery needs aws_encryption_sdk and KMS, no sealq code."""
    body = os.urandom(size)
    ciphertext = seal(sealer, body)

    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[cmk_arn], botocore_session=botocore.session.Session()
    )
    plaintext, header = client.decrypt(source=ciphertext, key_provider=provider)
    assert plaintext == body
    assert header.encryption_context["sealq:queue-arn"] == QUEUE_A


def test_a_cold_container_opens_with_one_decrypt_call(sealer, consumer, consumer_service):
    sealed = [seal(sealer, b"one"), seal(sealer, b"two")]
    assert [consumer.open(m, bound_to=only_queue(QUEUE_A)).plaintext for m in sealed] == [
        b"one",
        b"two",
    ]
    assert consumer_service.decrypt_calls == 1
    assert consumer_service.data_key_calls == 0


def test_message_for_one_queue_does_not_open_in_another_and_fetches_no_key(
    sealer, consumer, consumer_service
):
    ciphertext = seal(sealer, b"for A only", queue_arn=QUEUE_A)
    with pytest.raises(SealError, match="bound to another queue"):
        consumer.open(ciphertext, bound_to=only_queue(QUEUE_B))
    assert consumer_service.decrypt_calls == 0
    assert consumer_service.data_key_calls == 0


def test_message_redriven_to_a_dead_letter_queue_opens_there(sealer, consumer):
    ciphertext = seal(sealer, b"redriven", queue_arn=QUEUE_A)
    opened = consumer.open(ciphertext, bound_to={Binding(DLQ), Binding(QUEUE_A)})
    assert opened.plaintext == b"redriven"
    assert opened.queue_arn == QUEUE_A


def test_a_tampered_body_byte_does_not_open(sealer):
    ciphertext = bytearray(seal(sealer, b"x" * 100))
    ciphertext[-20] ^= 1
    with pytest.raises(SealError):
        sealer.open(bytes(ciphertext), bound_to=only_queue(QUEUE_A))


def test_no_single_bit_flip_anywhere_opens(consumer):
    """Flips in the encrypted data key reach KMS, which refuses them; all else is ours."""
    ciphertext = seal(consumer, b"attack at dawn")
    errors: list[Exception] = []
    for index in range(len(ciphertext)):
        tampered = bytearray(ciphertext)
        tampered[index] ^= 0x01
        with pytest.raises((SealError, KeyServiceError)) as raised:
            consumer.open(bytes(tampered), bound_to=only_queue(QUEUE_A))
        errors.append(raised.value)
    assert sum(isinstance(err, SealError) for err in errors) > len(ciphertext) // 2
    for err in errors:
        assert "attack" not in str(err)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x02", b"not a message", b'{"Body": "hello"}', os.urandom(300), b"\x02\x05" * 200],
)
def test_garbage_does_not_open(sealer, service, garbage):
    with pytest.raises(SealError):
        sealer.open(garbage, bound_to=only_queue(QUEUE_A))
    assert service.decrypt_calls == 0


def test_truncated_or_extended_messages_do_not_open(sealer):
    ciphertext = seal(sealer, b"whole")
    for broken in (ciphertext[:-1], ciphertext[: len(ciphertext) // 2], ciphertext + b"\x00"):
        with pytest.raises(SealError):
            sealer.open(broken, bound_to=only_queue(QUEUE_A))


def test_failed_opens_log_no_tracebacks(sealer, caplog):
    with caplog.at_level(logging.DEBUG, logger="aws_encryption_sdk"):
        with pytest.raises(SealError):
            sealer.open(b"\x02" * 50, bound_to=only_queue(QUEUE_A))
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def _stock_seal(cmk_arn: str, context: dict[str, str], algorithm: Algorithm) -> bytes:
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT
    )
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[cmk_arn], botocore_session=botocore.session.Session()
    )
    ciphertext, _header = client.encrypt(
        source=b"from elsewhere",
        key_provider=provider,
        encryption_context=context,
        algorithm=algorithm,
    )
    return bytes(ciphertext)


@pytest.mark.parametrize(
    ("algorithm", "extra"),
    [
        (Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, {}),
        (Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY, {"other": "key"}),
    ],
    ids=["signed-suite", "extra-context"],
)
def test_messages_not_made_by_sealq_do_not_open_and_fetch_no_key(
    consumer, consumer_service, cmk_arn, algorithm, extra
):
    context = {**encryption_context(QUEUE_A, ACCOUNT), **extra}
    ciphertext = _stock_seal(cmk_arn, context, algorithm)
    with pytest.raises(SealError):
        consumer.open(ciphertext, bound_to=only_queue(QUEUE_A))
    assert consumer_service.decrypt_calls == 0


def test_key_service_errors_propagate_from_seal(sealer, service):
    service.fail = KeyServiceError("KmsDisabled", "the key is disabled")
    with pytest.raises(KeyServiceError) as raised:
        seal(sealer)
    assert raised.value is service.fail
    assert raised.value.code == "KmsDisabled"


def test_key_service_errors_propagate_from_open(sealer, consumer, consumer_service):
    ciphertext = seal(sealer)
    consumer_service.fail = KeyServiceError("KmsAccessDenied", "no grant")
    with pytest.raises(KeyServiceError) as raised:
        consumer.open(ciphertext, bound_to=only_queue(QUEUE_A))
    assert raised.value.code == "KmsAccessDenied"
