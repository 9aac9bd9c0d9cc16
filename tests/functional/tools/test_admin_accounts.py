"""Accounts and access keys on moto: the key service's sealed secrets, the operator's command.

The handler's cache of access keys, on memory ports: tests/unit/auth/test_access_keys.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest

from chalicelib import settings
from chalicelib.keyservice import process as key_service_process
from chalicelib.keyservice.api import ACCESS_KEY_CONTEXT, KeyServiceError, secret_context
from tests.harness import REGION

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

    conf = settings.get()
    account = run_admin(capsys, "create-account", "a")
    other = run_admin(capsys, "create-access-key", account["AccountId"])
    service = key_service_process.client(
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
