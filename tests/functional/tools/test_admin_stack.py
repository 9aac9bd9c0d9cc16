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
