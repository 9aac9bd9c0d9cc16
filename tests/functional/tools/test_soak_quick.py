"""The soak's quick variant over real HTTP, and the pieces it relies on to judge a delivery.

The quick soak sends 200 messages through ``python -m tools.local.devserver`` on an external moto
(two producers, two consumers), injects one tampered and two KMS-refused messages into the
backing queues, and must lose nothing, deliver nothing corrupt, quarantine the tampered one,
keep the refused ones and see no 5xx.
"""

from __future__ import annotations

import io
from pathlib import Path

import aws_encryption_sdk
import pytest
from aws_encryption_sdk.identifiers import (
    Algorithm,
    CommitmentPolicy,
    EncryptionKeyType,
    WrappingAlgorithm,
)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

from bench import soak

ARN = b"arn:aws:kms:us-east-1:123456789012:key/8637abc1-3b13-4d30-a28b-3ab7d70fab14"


class _KmsShapedProvider(RawMasterKeyProvider):
    """A raw key under provider id ``aws-kms`` with an ARN as key id: sealq's header shape."""

    provider_id = "aws-kms"

    def _get_raw_key(self, key_id: bytes) -> WrappingKey:
        return WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=b"k" * 32,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )


@pytest.fixture(scope="module")
def sealed() -> bytes:
    provider = _KmsShapedProvider()
    provider.add_master_key(ARN)
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    message, _ = client.encrypt(
        source=b'{"v":1,"body":"hello"}' * 4,
        key_provider=provider,
        encryption_context={"sealq:queue-arn": "arn:aws:sqs:us-east-1:0:q", "sealq:account": "0"},
        algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    )
    return bytes(message)


def _edk(message: bytes):
    header, _ = deserialize_header(io.BytesIO(message))
    (edk,) = header.encrypted_data_keys
    return edk


def test_edk_span_finds_the_provider_info_and_encrypted_key_the_sdk_reads(sealed: bytes) -> None:
    span = soak.edk_span(sealed)
    edk = _edk(sealed)
    assert sealed[span.info[0]:span.info[1]] == edk.key_provider.key_info
    assert sealed[span.key[0]:span.key[1]] == edk.encrypted_data_key


def test_refused_copies_differ_by_one_bit_in_the_arn_key_id_or_the_encrypted_key(
    sealed: bytes,
) -> None:
    edk = _edk(sealed)
    arn = _edk(soak.refuse_arn(sealed))
    assert arn.encrypted_data_key == edk.encrypted_data_key
    info = arn.key_provider.key_info
    assert info != edk.key_provider.key_info and info.startswith(ARN[:39])  # up to "key/"
    assert _bits_apart(info, edk.key_provider.key_info) == 1
    key = _edk(soak.refuse_edk(sealed))
    assert key.key_provider.key_info == edk.key_provider.key_info
    assert _bits_apart(key.encrypted_data_key, edk.encrypted_data_key) == 1


def test_a_tampered_copy_differs_by_one_bit_after_the_header(sealed: bytes) -> None:
    tampered = soak.tamper_ciphertext(sealed)
    assert _bits_apart(tampered, sealed) == 1
    assert _edk(tampered) == _edk(sealed)
    assert tampered[:-17] == sealed[:-17] and tampered[-16:] == sealed[-16:]


def _bits_apart(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))


def test_a_body_carries_its_id_and_any_change_breaks_its_checksum() -> None:
    spec = soak.Spec("m000042", soak.STANDARD, 1000, True, None)
    body = soak.make_body(spec)
    assert len(body) == 1000
    assert soak.body_id(body) == "m000042"
    assert soak.body_id(body[:-1] + ("A" if body[-1] != "A" else "B")) is None
    assert soak.body_id("not a soak body") is None


def test_the_plan_has_every_size_both_queues_and_both_send_calls() -> None:
    work = soak.Workload.quick()
    sends = soak.plan(work)
    specs = [spec for send in sends for spec in send]
    assert len(specs) == len({s.id for s in specs}) == work.messages
    assert {s.kind for s in specs} == {soak.STANDARD, soak.FIFO}
    assert any(s.size >= soak.LARGE[0] for s in specs)
    assert any(s.size == soak.MEDIUM for s in specs)
    assert any(len(send) == 1 for send in sends) and any(len(send) > 1 for send in sends)
    assert all(len(send) <= 10 and len({s.kind for s in send}) == 1 for send in sends)


def test_quick_soak_loses_nothing_quarantines_tampered_and_keeps_refused(
    tmp_path: Path,
) -> None:
    work = soak.Workload.quick()
    # The devserver's stderr needs a real file.
    with open(tmp_path / "access.log", "w+") as access, open(tmp_path / "app.log", "w+") as app:
        result = soak.run(work, access, app)
    report = soak.format_report(result)

    assert result.sent == work.messages, report
    assert result.lost == [], report
    assert result.corrupt == 0, report
    assert result.http_5xx == 0 and result.server_5xx_lines == 0, report
    # It really injected, and the injected messages went where they must.
    assert len(result.tampered) == work.tampered >= 1, report
    assert len(result.refused) == work.refused >= 1, report
    assert result.injected_delivered == [], report
    assert {i.message_id for i in result.tampered} <= result.quarantined_ids, report
    assert len(result.quarantine_keys) >= 1, report
    assert not {i.message_id for i in result.refused} & result.quarantined_ids, report
    assert result.remaining == len(result.refused), report
    assert result.failures() == [], report
    assert "RESULT: PASS" in report
