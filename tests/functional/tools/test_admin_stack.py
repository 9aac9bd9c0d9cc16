"""``python -m tools.admin --stack NAME``: a deployed stack's names from its outputs."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tools.admin import cli as admin

REGION = "us-east-1"
OUTPUTS = {
    "QueuesTable": "s1-QueuesTable-ABC", "KeysTable": "s1-KeysTable-DEF",
    "AccountsTable": "s1-AccountsTable-GHI", "PayloadBucket": "s1-payloadbucket-jkl",
    "DefaultKmsKey": "alias/sealq-s1", "KeyServiceFunction": "s1-KeyService-MNO",
    "BackingQueuePrefix": "sealq-1a2b3c4d-",
    "DeliveryFunction": "arn:aws:lambda:us-east-1:123456789012:function:s1-Delivery-PQR",
}


def create_stack(name: str, outputs: dict[str, str]) -> None:
    template: dict[str, Any] = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=name, TemplateBody=json.dumps(template))


def test_a_stacks_outputs_become_the_admin_commands_settings(moto: None) -> None:
    create_stack("s1", OUTPUTS)
    env = admin.stack_environment("s1")
    assert env == {
        "SEALQ_QUEUES_TABLE": "s1-QueuesTable-ABC", "SEALQ_KEYS_TABLE": "s1-KeysTable-DEF",
        "SEALQ_ACCOUNTS_TABLE": "s1-AccountsTable-GHI",
        "SEALQ_PAYLOAD_BUCKET": "s1-payloadbucket-jkl",
        "SEALQ_DEFAULT_KMS_KEY": "alias/sealq-s1",
        "SEALQ_KEY_SERVICE_FUNCTION": "s1-KeyService-MNO",
        "SEALQ_BACKING_QUEUE_PREFIX": "sealq-1a2b3c4d-",
        "SEALQ_DELIVERY_FUNCTION": OUTPUTS["DeliveryFunction"],
        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
    }


def test_a_stack_without_sealqs_outputs_is_refused_by_name(
    moto: None, capsys: pytest.CaptureFixture[str],
) -> None:
    create_stack("other", {"Something": "else"})
    assert admin.run(["--stack", "other", "list-accounts"]) == 2
    error = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert error["error"] == "StackError" and "QueuesTable" in error["message"]
    assert admin.run(["--stack", "missing", "list-accounts"]) == 2
    assert "missing" in json.loads(capsys.readouterr().err.strip().splitlines()[-1])["message"]


# -- the operator's region: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's -------

STACK_REGION = "eu-west-1"


def deploy_in(region: str, name: str = "sealq-prod") -> None:
    """A sealq stack's stores and outputs in ``region`` only (nothing in any other)."""
    from chalicelib import settings
    from tools.local import provision

    env = {f"SEALQ_{k}": v for k, v in {
        "QUEUES_TABLE": "p-QueuesTable-1", "KEYS_TABLE": "p-KeysTable-2",
        "ACCOUNTS_TABLE": "p-AccountsTable-3", "PAYLOAD_BUCKET": "p-payloadbucket-4",
        "DEFAULT_KMS_KEY": f"alias/sealq-{name}"}.items()}
    conf = settings.from_environ({**env, "AWS_REGION": region})
    provision.ensure_resources(conf, boto3.session.Session(region_name=region))
    outputs = {"QueuesTable": conf.queues_table, "KeysTable": conf.keys_table,
               "AccountsTable": conf.accounts_table, "PayloadBucket": conf.payload_bucket,
               "DefaultKmsKey": conf.default_kms_key, "KeyServiceFunction": f"{name}-KeyService",
               "BackingQueuePrefix": "sealq-1a2b3c4d-",
               "DeliveryFunction": f"arn:aws:lambda:{region}:123456789012:function:{name}-D"}
    template: dict[str, Any] = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=region).create_stack(
        StackName=name, TemplateBody=json.dumps(template))


def in_process_key_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's key service answered in this process (moto runs no Lambda function),
    once the admin command's Lambda client is checked to be in the stack's region."""
    from dataclasses import replace

    from chalicelib.keyservice import process

    real = process.client

    def key_service(conf: Any, clients: Any, **kwargs: Any) -> Any:
        assert conf.key_service_function == "sealq-prod-KeyService"
        assert clients.get("key_service").meta.region_name == STACK_REGION
        return real(replace(conf, key_service_function=""), clients, **kwargs)

    monkeypatch.setattr(process, "client", key_service)


def last_line(text: str) -> dict[str, Any]:
    lines = text.strip().splitlines()
    assert len(lines) == 1, lines  # one line, never a traceback
    return dict(json.loads(lines[0]))


@pytest.mark.parametrize("named_by", ["AWS_REGION", "AWS_DEFAULT_REGION", "profile"])
def test_every_client_of_the_admin_command_works_in_the_region_the_operator_names(
    moto: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
    capsys: pytest.CaptureFixture[str], named_by: str,
) -> None:
    """AWS_REGION wins over AWS_DEFAULT_REGION, which wins over the profile's region
    (botocore alone reads only the last two); the stack, its tables, bucket and keys
    exist in that region only, so a client made anywhere else fails the command."""
    config = tmp_path / "config"
    profile_region = STACK_REGION if named_by == "profile" else "us-east-2"
    config.write_text(f"[default]\nregion = {profile_region}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    if named_by == "AWS_REGION":
        monkeypatch.setenv("AWS_REGION", STACK_REGION)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    elif named_by == "AWS_DEFAULT_REGION":
        monkeypatch.setenv("AWS_DEFAULT_REGION", STACK_REGION)
    deploy_in(STACK_REGION)
    cmk = boto3.client("kms", region_name=STACK_REGION).create_key()["KeyMetadata"]["Arn"]
    in_process_key_service(monkeypatch)

    def admin_ok(*args: str) -> dict[str, Any]:
        code = admin.run(["--stack", "sealq-prod", *args])
        out, err = capsys.readouterr()
        assert code == 0, err
        return last_line(out)

    created = admin_ok("create-account", "orders-team")  # the accounts table, the key service
    assert admin_ok("list-accounts")["Accounts"][0]["AccountId"] == created["AccountId"]
    allowed = admin_ok("allow-kms-key", created["AccountId"], cmk)  # KMS DescribeKey
    assert allowed["Forms"] == sorted({cmk, cmk.split(":key/")[1]})
    assert admin.run(["--stack", "sealq-prod", "quarantine-count", "000000000000", "q"]) == 1
    assert last_line(capsys.readouterr().out) == {"error": "QueueDoesNotExist", "queue": "q"}


def test_a_stack_that_is_not_there_says_so_in_one_line_naming_the_region(
    moto: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AWS_REGION", STACK_REGION)
    deploy_in("us-east-1")  # a stack of that name, in another region

    assert admin.run(["--stack", "sealq-prod", "list-accounts"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    error = last_line(err)
    assert error["error"] == "StackNotFound"
    assert "sealq-prod" in error["message"] and STACK_REGION in error["message"]
