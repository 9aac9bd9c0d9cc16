"""Accounts and access keys: sealed secrets, the operator's command, the handler's cache."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest

from chalicelib import settings
from chalicelib.auth.keys import NEGATIVE_TTL, AccessKeyCache
from chalicelib.auth.sigv4 import Scope, UnknownAccessKey, derive_signing_key
from chalicelib.clock import FakeClock
from chalicelib.keyservice.api import ACCESS_KEY_CONTEXT, KeyServiceError, secret_context
from chalicelib.storage.errors import Transient
from chalicelib.storage.ports import INACTIVE
from tests.harness import REGION
from tests.memory import MemoryAccountStore, MemoryKeyService
from tools.admin.accounts import Accounts

DATE = "20260101"


def scope(key_id: str, date: str = DATE) -> Scope:
    return Scope(key_id, date, REGION, "sqs")


# -- the handler's cache, on memory ports ---------------------------------------------


class Box:
    def __init__(self, clock: FakeClock, ttl: float = 30.0) -> None:
        self.store = MemoryAccountStore()
        self.keys = MemoryKeyService(clock)
        self.accounts = Accounts(self.store, self.keys, clock)
        self.cache = AccessKeyCache(self.store, self.keys, clock=clock, ttl=ttl)
        self.account = self.accounts.create_account("tenant").account_id
        self.key = self.accounts.create_access_key(self.account)


@pytest.fixture
def box(clock: FakeClock) -> Box:
    return Box(clock)


def test_a_resolved_key_is_the_signing_key_of_the_secret_and_names_the_account(box: Box) -> None:
    resolved = box.cache.resolve(scope(box.key.access_key_id))
    assert resolved.account == box.account
    assert resolved.signing_key == derive_signing_key(box.key.secret_access_key, DATE, REGION)


def test_the_warm_path_reads_no_record_and_opens_no_secret(box: Box) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    reads, calls = box.store.reads, box.keys.calls
    for _ in range(100):
        box.cache.resolve(scope(box.key.access_key_id))
    assert (box.store.reads, box.keys.calls) == (reads, calls)


def test_a_new_day_opens_the_secret_once_more(box: Box) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    calls = box.keys.calls
    box.cache.resolve(scope(box.key.access_key_id, "20260102"))
    box.cache.resolve(scope(box.key.access_key_id, "20260102"))
    assert box.keys.calls == calls + 1


def test_a_deactivated_key_stops_working_within_the_ttl(box: Box, clock: FakeClock) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    box.accounts.set_access_key_status(box.key.access_key_id, INACTIVE)
    box.cache.resolve(scope(box.key.access_key_id))  # still cached: the documented window
    clock.advance(30.0)
    with pytest.raises(UnknownAccessKey):
        box.cache.resolve(scope(box.key.access_key_id))


def test_a_deleted_key_stops_working_within_the_ttl(box: Box, clock: FakeClock) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    box.accounts.delete_access_key(box.key.access_key_id)
    clock.advance(30.0)
    with pytest.raises(UnknownAccessKey):
        box.cache.resolve(scope(box.key.access_key_id))


def test_an_unknown_key_is_remembered_briefly(box: Box, clock: FakeClock) -> None:
    for _ in range(10):
        with pytest.raises(UnknownAccessKey):
            box.cache.resolve(scope("AKIANOSUCHKEY0000000"))
    assert box.store.reads == 1
    clock.advance(NEGATIVE_TTL)
    with pytest.raises(UnknownAccessKey):
        box.cache.resolve(scope("AKIANOSUCHKEY0000000"))
    assert box.store.reads == 2


def test_a_store_that_cannot_be_read_refuses_rather_than_serves(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(_key_id: str) -> None:
        raise Transient("dynamodb", "ThrottlingException")

    monkeypatch.setattr(box.store, "get_key", down)
    with pytest.raises(Transient):
        box.cache.resolve(scope(box.key.access_key_id))


def test_a_secret_sealed_for_another_key_does_not_open(box: Box) -> None:
    other = box.accounts.create_access_key(box.account)
    record = box.store.get_key(other.access_key_id)
    assert record is not None
    with pytest.raises(KeyServiceError):
        box.keys.open_secret(context=secret_context(box.key.access_key_id),
                             sealed=record.sealed_secret)


def test_new_keys_and_accounts_are_shaped_like_aws(box: Box) -> None:
    assert len(box.account) == 12 and box.account.isdigit()
    key_id, secret = box.key.access_key_id, box.key.secret_access_key
    assert len(key_id) == 20 and key_id.startswith("AKIA") and key_id.isalnum()
    assert len(secret) == 40
    assert secret not in repr(box.key) and secret not in repr(box.store.get_key(key_id))


# -- on moto: the key service's envelopes and the operator's command ----------------------


def run_admin(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> dict[str, Any]:
    from tools.admin import cli as admin
    assert admin.run(list(args)) == code
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def raw_items(table: str) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    return list(ddb.scan(TableName=table)["Items"])


def test_create_account_prints_the_new_key_once_and_stores_it_only_sealed(
    stack: None, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = run_admin(capsys, "create-account", "orders-team")
    assert set(created) == {"AccountName", "AccountId", "AccessKeyId", "SecretAccessKey"}
    secret = created["SecretAccessKey"]
    everything = json.dumps(
        [raw_items(t) for t in (settings.get().accounts_table, settings.get().keys_table)],
        default=lambda b: b.hex() if isinstance(b, bytes) else str(b),
    )
    assert secret not in everything and secret.encode().hex() not in everything
    assert secret not in caplog.text
    listed = run_admin(capsys, "list-accounts")["Accounts"]
    assert {"AccountId": created["AccountId"], "AccountName": "orders-team",
            "KmsKeys": []} in listed


def test_a_sealed_secret_is_an_esdk_message_the_stock_sdk_opens(
    stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    created = run_admin(capsys, "create-account", "dr")
    key_id = created["AccessKeyId"]
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    kms = boto3.client("kms", region_name=REGION)
    arn = kms.describe_key(KeyId=settings.get().default_kms_key)["KeyMetadata"]["Arn"]
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[arn])
    plaintext, header = client.decrypt(source=sealed_secret_of(key_id), key_provider=provider)
    assert plaintext.decode() == created["SecretAccessKey"]
    assert header.encryption_context[ACCESS_KEY_CONTEXT] == key_id


def sealed_secret_of(key_id: str) -> bytes:
    (item,) = [i for i in raw_items(settings.get().accounts_table)
               if i["id"]["S"] == f"key#{key_id}"]
    return bytes(item["secret"]["B"])


def test_the_key_service_opens_a_secret_only_under_its_own_key_id(
    stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.aws.clients import Clients
    from chalicelib.handler import container

    conf = settings.get()
    account = run_admin(capsys, "create-account", "a")
    other = run_admin(capsys, "create-access-key", account["AccountId"])
    service = container.key_service_client(
        conf, Clients(boto3.session.Session(), conf.region, conf.aws_endpoint))
    sealed = sealed_secret_of(account["AccessKeyId"])
    opened = service.open_secret(context=secret_context(account["AccessKeyId"]), sealed=sealed)
    assert opened.decode() == account["SecretAccessKey"]
    with pytest.raises(KeyServiceError) as refused:
        service.open_secret(context=secret_context(other["AccessKeyId"]), sealed=sealed)
    assert refused.value.code == "InvalidCiphertext"
    with pytest.raises(KeyServiceError) as malformed:
        service.open_secret(context={"sealq:queue-arn": "x"}, sealed=sealed)
    assert malformed.value.code == "InternalFailure"


def kms_keys_of(capsys: pytest.CaptureFixture[str], account: str) -> list[str]:
    (found,) = [a for a in run_admin(capsys, "list-accounts")["Accounts"]
                if a["AccountId"] == account]
    return list(found["KmsKeys"])


def test_the_operator_manages_keys_and_allowed_cmks(
    stack: None, capsys: pytest.CaptureFixture[str]
) -> None:
    account = run_admin(capsys, "create-account", "t")["AccountId"]
    second = run_admin(capsys, "create-access-key", account)
    key = second["AccessKeyId"]
    assert second["AccountId"] == account and len(second["SecretAccessKey"]) == 40
    assert run_admin(capsys, "deactivate-access-key", key) == {"AccessKeyId": key,
                                                                 "Status": "Inactive"}
    statuses = {k["AccessKeyId"]: k["Status"]
                for k in run_admin(capsys, "list-access-keys", account)["AccessKeys"]}
    assert statuses[key] == "Inactive" and list(statuses.values()).count("Active") == 1
    assert run_admin(capsys, "delete-access-key", key)["Deleted"] is True
    assert run_admin(capsys, "delete-access-key", key, code=1)["error"] == "NoSuchAccessKey"
    cmk = "alias/tenant-key"
    run_admin(capsys, "allow-kms-key", account, cmk)
    # with its alias ARN: the same key for sealq's role (auth/cmks.py same_key_forms)
    assert kms_keys_of(capsys, account) == [cmk, f"arn:aws:kms:us-east-1:123456789012:{cmk}"]
    run_admin(capsys, "disallow-kms-key", account, cmk)
    assert kms_keys_of(capsys, account) == []
    assert run_admin(capsys, "create-access-key", "999999999999", code=1)["error"] == (
        "NoSuchAccount")
