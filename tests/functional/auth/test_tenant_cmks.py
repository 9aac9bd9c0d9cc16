"""Tenant-bound CMKs (lock 1): a queue's KmsMasterKeyId must be allowed for its account.

Through the harness: real boto3 clients, handlers over moto, the operator's own
``allow-kms-key`` / ``disallow-kms-key`` command.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.clock import FakeClock
from tests.harness import REGION, TEST_ACCOUNT, Fleet, auth_secrets, sqs_client

# SQS's KmsAccessDenied; botocore reports the query-compatible code, as from AWS.
DENIED = "KMS.AccessDeniedException"
B_ACCOUNT = "222222222222"
B_CREDENTIALS = Credentials("AKIASEALQTESTKEYBBBB", "sealqSecondTenantSecret/0123456789abcdef")


@pytest.fixture
def cmk(stack: None) -> str:
    return str(boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"])


def admin(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    from tools.admin import cli as tool
    assert tool.run(list(args)) == 0
    return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


def refused_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return str(raised.value.response["Error"]["Code"])


def ttl() -> float:
    return settings.get().auth_cache_ttl


def test_a_cmk_not_allowed_for_the_account_is_refused_and_nothing_is_created_or_changed(
    fleet: Fleet, cmk: str
) -> None:
    sqs = fleet.sqs()
    code = refused_code(sqs.create_queue, QueueName="q", Attributes={"KmsMasterKeyId": cmk})
    assert code == DENIED
    assert sqs.list_queues().get("QueueUrls", []) == []

    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    code = refused_code(sqs.set_queue_attributes, QueueUrl=url,
                        Attributes={"KmsMasterKeyId": cmk, "VisibilityTimeout": "45"})
    assert code == DENIED
    attrs = fleet.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "KmsMasterKeyId" not in attrs
    assert attrs["VisibilityTimeout"] == "30"  # the whole change is refused


def test_the_refusal_is_sqs_kms_access_denied_for_every_sdk(fleet: Fleet, cmk: str) -> None:
    sqs = fleet.sqs()
    with pytest.raises(sqs.exceptions.KmsAccessDenied) as raised:
        sqs.create_queue(QueueName="q", Attributes={"KmsMasterKeyId": cmk})
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert cmk in raised.value.response["Error"]["Message"]


def test_a_key_of_any_form_not_allowed_is_refused_by_the_allow_list_first(
    fleet: Fleet,
) -> None:
    """AWS takes any text as a KmsMasterKeyId (recorded), so no form check comes first:
    the account's allow-list decides."""
    for key in ("k" * 3000, "testKeyId", "not a key"):
        code = refused_code(fleet.sqs().create_queue, QueueName="q",
                            Attributes={"KmsMasterKeyId": key})
        assert code == DENIED


def test_after_allow_kms_key_the_account_can_use_it(
    fleet: Fleet, cmk: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = fleet.sqs()
    refused_code(sqs.create_queue, QueueName="q", Attributes={"KmsMasterKeyId": cmk})
    assert admin(capsys, "allow-kms-key", TEST_ACCOUNT, cmk)["Allowed"] is True

    # A cold container sees it at once; a warm one within its auth cache TTL.
    fresh = fleet.sqs()
    url = fresh.create_queue(QueueName="q", Attributes={"KmsMasterKeyId": cmk})["QueueUrl"]
    clock.advance(ttl())
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "alias/sealq-default"})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": cmk})
    sqs.send_message(QueueUrl=url, MessageBody="under the tenant's key")
    got = sqs.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in got] == ["under the tenant's key"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsMasterKeyId"])
    assert attrs["Attributes"]["KmsMasterKeyId"] == cmk


def test_the_default_key_always_works_and_costs_no_account_read(fleet: Fleet) -> None:
    handler, clients = fleet.container()
    sqs = sqs_client(handler)
    sqs.list_queues()  # the access key is cached now
    reads: list[str] = []
    clients.get("accounts").meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: reads.append(model.name))
    default = settings.get().default_kms_key
    url = sqs.create_queue(QueueName="a", Attributes={"KmsMasterKeyId": default})["QueueUrl"]
    sqs.create_queue(QueueName="b", Attributes={"KmsMasterKeyId": ""})
    sqs.create_queue(QueueName="c")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": ""})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": default})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "40"})
    sqs.send_message(QueueUrl=url, MessageBody="m")
    assert reads == []


def test_allowed_keys_are_read_once_per_ttl_not_per_request(
    fleet: Fleet, cmk: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    admin(capsys, "allow-kms-key", TEST_ACCOUNT, cmk)
    handler, clients = fleet.container()
    sqs = sqs_client(handler)
    sqs.list_queues()
    reads: list[str] = []
    clients.get("accounts").meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: reads.append(model.name))
    for n in range(5):
        sqs.create_queue(QueueName=f"q{n}", Attributes={"KmsMasterKeyId": cmk})
    assert reads == ["GetItem"]


def test_disallow_takes_it_back_within_the_cache_ttl(
    fleet: Fleet, cmk: str, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    admin(capsys, "allow-kms-key", TEST_ACCOUNT, cmk)
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="q", Attributes={"KmsMasterKeyId": cmk})["QueueUrl"]
    assert admin(capsys, "disallow-kms-key", TEST_ACCOUNT, cmk)["Allowed"] is False
    sqs.create_queue(QueueName="r", Attributes={"KmsMasterKeyId": cmk})  # the documented window
    clock.advance(ttl())
    assert refused_code(sqs.create_queue, QueueName="s",
                        Attributes={"KmsMasterKeyId": cmk}) == DENIED
    assert refused_code(sqs.set_queue_attributes, QueueUrl=url,
                        Attributes={"KmsMasterKeyId": cmk}) == DENIED
    names = [u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]]
    assert names == ["q", "r"]


def test_a_second_account_cannot_use_the_first_accounts_key(
    fleet: Fleet, cmk: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from chalicelib.clock import SYSTEM_CLOCK
    from chalicelib.storage.accounts import DynamoAccountStore
    from tools.admin.accounts import Accounts

    conf = settings.get()
    store = DynamoAccountStore(boto3.client("dynamodb", region_name=REGION), conf.accounts_table)
    accounts = Accounts(store, auth_secrets(), SYSTEM_CLOCK)
    accounts.create_account("tenant-b", B_ACCOUNT)
    accounts.register_access_key(B_ACCOUNT, B_CREDENTIALS.access_key, B_CREDENTIALS.secret_key)
    admin(capsys, "allow-kms-key", TEST_ACCOUNT, cmk)

    a = fleet.sqs()
    b = sqs_client(fleet.handler(), credentials=B_CREDENTIALS)
    a.create_queue(QueueName="a-queue", Attributes={"KmsMasterKeyId": cmk})
    assert refused_code(b.create_queue, QueueName="b-queue",
                        Attributes={"KmsMasterKeyId": cmk}) == DENIED
    url = b.create_queue(QueueName="b-queue")["QueueUrl"]
    assert refused_code(b.set_queue_attributes, QueueUrl=url,
                        Attributes={"KmsMasterKeyId": cmk}) == DENIED
    assert b.list_queues()["QueueUrls"] == [url]
    # Allowing it for B is the operator's decision, and then it works.
    admin(capsys, "allow-kms-key", B_ACCOUNT, cmk)
    sqs_client(fleet.handler(), credentials=B_CREDENTIALS).set_queue_attributes(
        QueueUrl=url, Attributes={"KmsMasterKeyId": cmk})


@pytest.mark.parametrize(("code", "status", "expected"), [
    ("ProvisionedThroughputExceededException", 400, "RequestThrottled"),
    ("InternalServerError", 500, "RequestThrottled"),
    ("AccessDeniedException", 400, "InternalFailure"),
])
def test_when_the_accounts_cannot_be_read_the_key_is_refused_never_allowed(
    fleet: Fleet, cmk: str, capsys: pytest.CaptureFixture[str],
    code: str, status: int, expected: str,
) -> None:
    admin(capsys, "allow-kms-key", TEST_ACCOUNT, cmk)
    handler, clients = fleet.container()
    sqs = sqs_client(handler, retries=1)
    sqs.list_queues()  # the access key is cached: only the CMK check reads the table

    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, "GetItem")

    clients.get("accounts").meta.events.register("before-call.dynamodb.GetItem", fail)
    assert refused_code(sqs.create_queue, QueueName="q",
                        Attributes={"KmsMasterKeyId": cmk}) == expected
    assert fleet.sqs().list_queues().get("QueueUrls", []) == []


def test_same_key_forms_pair_alias_name_with_alias_arn_and_key_id_with_key_arn() -> None:
    from tools.admin.accounts import same_key_forms

    own = {"region": "us-east-1", "account": "111122223333"}
    alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/tenant"
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    key_arn = f"arn:aws:kms:us-east-1:111122223333:key/{key_id}"
    assert same_key_forms("alias/tenant", **own) == {"alias/tenant", alias_arn}
    assert same_key_forms(alias_arn, **own) == {"alias/tenant", alias_arn}
    assert same_key_forms(key_id, **own) == {key_id, key_arn}
    assert same_key_forms(key_arn, **own) == {key_id, key_arn}
    # another account's or region's alias is that account's own: only as written
    other = "arn:aws:kms:us-east-1:999999999999:alias/tenant"
    assert same_key_forms(other, **own) == {other}
    elsewhere = "arn:aws:kms:eu-west-1:111122223333:alias/tenant"
    assert same_key_forms(elsewhere, **own) == {elsewhere}
    assert same_key_forms("alias/tenant", region="us-east-1", account=None) == {"alias/tenant"}


def test_an_alias_allowed_by_name_is_allowed_as_its_alias_arn_and_no_other_accounts(
    fleet: Fleet, cmk: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kms = boto3.client("kms", region_name=REGION)
    kms.create_alias(AliasName="alias/tenant-a", TargetKeyId=cmk)
    service_account = cmk.split(":")[4]
    alias_arn = f"arn:aws:kms:{REGION}:{service_account}:alias/tenant-a"
    out = admin(capsys, "allow-kms-key", TEST_ACCOUNT, "alias/tenant-a")
    assert out["Forms"] == sorted(["alias/tenant-a", alias_arn])
    sqs = fleet.sqs()
    sqs.create_queue(QueueName="by-name", Attributes={"KmsMasterKeyId": "alias/tenant-a"})
    url = sqs.create_queue(QueueName="by-arn", Attributes={"KmsMasterKeyId": alias_arn})[
        "QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="sealed under the alias")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "sealed under the alias"
    assert refused_code(sqs.create_queue, QueueName="foreign", Attributes={
        "KmsMasterKeyId": "arn:aws:kms:us-east-1:999999999999:alias/tenant-a"}) == DENIED
    assert refused_code(sqs.create_queue, QueueName="target", Attributes={
        "KmsMasterKeyId": cmk}) == DENIED  # the alias is not its target key
    admin(capsys, "disallow-kms-key", TEST_ACCOUNT, alias_arn)
    assert refused_code(fleet.sqs().create_queue, QueueName="again", Attributes={
        "KmsMasterKeyId": "alias/tenant-a"}) == DENIED
