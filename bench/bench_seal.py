"""Warm per-message cost of sealing and opening, next to raw AES-GCM on the same bytes.

Run from the repo root: ``python -m bench.bench_seal``. KMS is moto, in-process; the
key service is a minimal KMS-backed stand-in, since the warm path never calls it
(the table's last column shows the calls made while measuring: it should be 0).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping

import boto3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from moto import mock_aws

from chalicelib.crypto.keycache import HandlerKeyCache
from chalicelib.crypto.sealing import Binding, Sealer
from chalicelib.keyservice.api import DataKey

QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:bench"
ACCOUNT = "000000000000"
CMK = "alias/sealq-bench"
SIZES = (1024, 64 * 1024)
REPEATS = 7
# Iterations per repeat: enough for ~0.1-0.3 s per timing on a slow 2-core box.
ITERATIONS = {1024: 1000, 64 * 1024: 400}


class _KmsKeyService:
    """Just enough key service to warm the caches: GenerateDataKey / Decrypt, counted."""

    def __init__(self) -> None:
        self.calls = 0
        self.edk_length = 0
        self._kms = boto3.client("kms", region_name="us-east-1")

    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        self.calls += 1
        out = self._kms.generate_data_key(
            KeyId=cmk, KeySpec="AES_256", EncryptionContext=dict(context)
        )
        self.edk_length = len(out["CiphertextBlob"])
        return DataKey(
            plaintext=out["Plaintext"],
            encrypted=out["CiphertextBlob"],
            cmk_arn=out["KeyId"],
            deadline=time.time() + reuse_period,
        )

    def decrypt_key(self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
        self.calls += 1
        out = self._kms.decrypt(
            CiphertextBlob=encrypted, KeyId=cmk_arn, EncryptionContext=dict(context)
        )
        return bytes(out["Plaintext"])

    def service_secret(self, name: str) -> bytes:
        raise NotImplementedError


def _per_op_us(operation: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(iterations):
        operation()
    return (time.perf_counter_ns() - start) / iterations / 1000


def _timings(
    sealer: Sealer, service: _KmsKeyService, size: int
) -> tuple[dict[str, float], int, int]:
    """Median µs per operation for one body size, the sealed size, key-service calls made."""
    body = os.urandom(size)

    def seal() -> bytes:
        return sealer.seal(body, queue_arn=QUEUE_ARN, account=ACCOUNT, cmk=CMK, reuse_period=3600)

    here = {Binding(QUEUE_ARN)}
    sealed = seal()  # warms the cache: the one key-service call of the run
    assert sealer.open(sealed, bound_to=here).plaintext == body
    aead = AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    raw = aead.encrypt(nonce, body, None)
    operations: dict[str, Callable[[], object]] = {
        "seal": seal,
        "aes_enc": lambda: aead.encrypt(os.urandom(12), body, None),
        "open": lambda: sealer.open(sealed, bound_to=here),
        "aes_dec": lambda: aead.decrypt(nonce, raw, None),
    }
    samples: dict[str, list[float]] = {name: [] for name in operations}
    calls_before = service.calls
    for _ in range(REPEATS):  # alternate, so both sides see the same machine state
        for name, operation in operations.items():
            samples[name].append(_per_op_us(operation, ITERATIONS[size]))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return medians, len(sealed), service.calls - calls_before


def run() -> None:
    """Print the table: sealq and raw AES-GCM side by side per body size."""
    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=CMK, TargetKeyId=key_id)
    service = _KmsKeyService()
    sealer = Sealer(HandlerKeyCache(service, max_entries=16, decrypt_ttl=3600))

    print(
        f"sealq seal/open vs raw AES-GCM, warm caches, python {platform.python_version()}, "
        f"{os.cpu_count()} cpus; median of {REPEATS} runs, µs per message"
    )
    header = (
        f"{'body':>7} {'seal':>8} {'aesgcm':>8} {'ratio':>6} | {'open':>8} "
        f"{'aesgcm':>8} {'ratio':>6} | {'+bytes':>6} {'calls':>5}"
    )
    print(header)
    print("-" * len(header))
    for size in SIZES:
        t, sealed_size, calls = _timings(sealer, service, size)
        print(
            f"{size // 1024:>5}Ki {t['seal']:>8.1f} {t['aes_enc']:>8.1f} "
            f"{t['seal'] / t['aes_enc']:>5.0f}x | {t['open']:>8.1f} {t['aes_dec']:>8.1f} "
            f"{t['open'] / t['aes_dec']:>5.0f}x | {sealed_size - size:>6} "
            f"{calls:>5}"
        )
    print(
        f"+bytes: sealed size minus body, with a {service.edk_length}-byte moto EDK (real "
        "KMS EDKs are ~70 bytes longer); calls: key-service calls while measuring"
    )


def main() -> None:
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    with mock_aws():
        run()


if __name__ == "__main__":
    main()
