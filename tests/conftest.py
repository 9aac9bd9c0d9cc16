"""Shared fixtures: a fresh moto backend per test, settings and caches reset."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from chalicelib.clock import FakeClock
from chalicelib.handler import container
from tests.harness import TEST_ENV, TEST_SECRET


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees a real credential, a real endpoint or another test's settings; the
    local stack's state (its access key profile) goes to the test's own directory."""
    for name in list(os.environ):
        if name.startswith("SEALQ_") or name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SEALQ_LOCAL_DIR", str(tmp_path / ".sealq"))
    container.reset()
    yield
    container.reset()


# The secret access keys the suite's clients sign with (tests/harness.py and the
# second and third tenants of the cross-account tests).
SUITE_SECRETS = (
    TEST_SECRET,
    "sealqSecondTenantSecret/0123456789abcdef",
    "sealqThirdTenantSecret/0123456789abcdefg",
)


class _Records(logging.Handler):
    """Every log record of the session, as text (message and traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is still scanned as written
            text = f"{record.msg!r} {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + repr(record.exc_info[1])
        self.texts.append(text)


@pytest.fixture(autouse=True, scope="session")
def _the_whole_suite_logs_at_debug_and_never_a_secret() -> Iterator[None]:
    """sealq's loggers at DEBUG for every test (a test may set its own level), every
    record kept; at the end no record of the whole run may carry a secret access key
    in any form. tests/functional/crypto/test_invariants.py and
    tests/functional/auth/test_secret_scan.py scan their own workloads for bodies,
    data keys and derived signing keys too."""
    from tests.harness import forms

    records = _Records()
    root, sealq = logging.getLogger(), logging.getLogger("sealq")
    level = sealq.level
    root.addHandler(records)
    sealq.setLevel(logging.DEBUG)
    yield
    sealq.setLevel(level)
    root.removeHandler(records)
    logged = "\n".join(records.texts).encode("utf-8", "replace")
    for secret in SUITE_SECRETS:
        for form in forms(secret.encode()):
            assert form not in logged, "a secret access key reached a log record"


@pytest.fixture(autouse=True, scope="session")
def _symmetric_kms_keys_without_rsa() -> Iterator[None]:
    """moto generates a fresh 2048-bit RSA key pair for every KMS key it creates,
    symmetric ones included, where nothing ever uses it (KMS refuses Sign and
    GetPublicKey on a symmetric key). That costs 50-500 ms of CPU per key, per test.
    Symmetric keys share one pair made once; every other key spec is moto's own."""
    from moto.kms import models

    original = models.generate_private_key
    shared: list[Any] = []

    def generate(key_spec: str) -> Any:
        if key_spec not in ("", None, "SYMMETRIC_DEFAULT"):
            return original(key_spec)
        if not shared:
            shared.append(original("RSA_2048"))
        return shared[0]

    models.generate_private_key = generate
    yield
    models.generate_private_key = original


@pytest.fixture
def moto() -> Iterator[None]:
    """An in-process moto backend for the test's duration."""
    with mock_aws():
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stack(moto: None) -> None:
    """moto with sealq's tables, bucket, default CMK and the test access key in place."""
    from tests.harness import provision_stack

    provision_stack()


@pytest.fixture
def default_cmk(moto: None) -> str:
    """moto KMS with only the service's default CMK under its alias; returns the key ARN."""
    import boto3

    kms = boto3.client("kms", region_name="us-east-1")
    key_id = kms.create_key(KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/sealq-default", TargetKeyId=key_id)
    return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])


@pytest.fixture
def json_logs() -> Iterator[None]:
    """sealq's loggers write Powertools JSON lines to stdout at DEBUG (as in Lambda at
    SEALQ_LOG_LEVEL=DEBUG) for the test's duration; read them with ``capsys``."""
    from chalicelib.observability.logs import configure_json_logs, unconfigure_json_logs

    configure_json_logs("DEBUG")
    yield
    unconfigure_json_logs()
