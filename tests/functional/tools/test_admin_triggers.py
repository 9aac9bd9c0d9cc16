"""The operator's trigger commands over moto: the trigger in the queue's record, and on a
deployed stack the event source mapping on the backing queue (moto's Lambda API)."""

from __future__ import annotations

import io
import json
import zipfile
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest

from chalicelib import settings
from tests.harness import REGION, TEST_ACCOUNT, Fleet
from tools.admin import cli

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:consumer"


def admin(*argv: str) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.run(list(argv))
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def delivery_function(stack: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """A delivery function in moto's Lambda, as a deployed stack has one."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="delivery", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zipped:
        zipped.writestr("app.py", "def delivery(event, context):\n    return {}\n")
    arn = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="sealq-Delivery", Runtime="python3.12", Role=role, Handler="app.delivery",
        Code={"ZipFile": code.getvalue()}, Timeout=28)["FunctionArn"]
    monkeypatch.setenv("SEALQ_DELIVERY_FUNCTION", arn)
    settings.reset()
    return str(arn)


def mappings() -> list[dict[str, Any]]:
    return list(boto3.client("lambda", region_name=REGION).list_event_source_mappings()[
        "EventSourceMappings"])


def test_a_trigger_is_created_listed_changed_and_deleted_with_its_mapping(
    sqs: Any, delivery_function: str,
) -> None:
    sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "60"})
    code, created = admin("create-trigger", TEST_ACCOUNT, "orders", FUNCTION,
                          "--batch-size", "50", "--batching-window", "2",
                          "--report-batch-item-failures", "--maximum-concurrency", "5",
                          "--filter", '{"body": {"kind": ["order"]}}')
    assert code == 0
    assert created["EventSourceArn"] == f"arn:aws:sqs:{REGION}:{TEST_ACCOUNT}:orders"
    assert created["FunctionArn"] == FUNCTION
    assert created["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (mapping,) = mappings()
    assert mapping["UUID"] == created["UUID"]
    assert mapping["FunctionArn"] == delivery_function  # the mapping feeds sealq's delivery
    assert mapping["BatchSize"] == 50
    assert mapping["EventSourceArn"].rsplit(":", 1)[1].startswith("sealq-")  # the backing queue
    _, listed = admin("list-triggers", TEST_ACCOUNT)
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [created["UUID"]]
    code, disabled = admin("disable-trigger", TEST_ACCOUNT, "orders")
    assert (code, disabled["State"]) == (0, "Disabled")
    code, changed = admin("update-trigger", TEST_ACCOUNT, "orders", "--batch-size", "5")
    assert (code, changed["BatchSize"], changed["State"]) == (0, 5, "Disabled")
    assert admin("delete-trigger", TEST_ACCOUNT, "orders") == (
        0, {"Queue": "orders", "Deleted": True})
    assert mappings() == []
    assert admin("list-triggers", TEST_ACCOUNT)[1] == {"EventSourceMappings": []}


@pytest.mark.parametrize(("argv", "text"), [
    (["--batch-size", "20"], "Maximum batch window in seconds must be greater than 0"),
    (["--batch-size", "0"], "Member must have value greater than or equal to 1"),
    (["--maximum-concurrency", "1"], "greater than or equal to 2"),
    (["--filter", "{not json"], "Invalid filter pattern definition"),
])
def test_refused_settings_get_lambdas_text_and_change_nothing(
    sqs: Any, delivery_function: str, argv: list[str], text: str,
) -> None:
    sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "60"})
    code, out = admin("create-trigger", TEST_ACCOUNT, "orders", FUNCTION, *argv)
    assert code == 1
    assert out["error"] == "InvalidParameterValueException" and text in out["message"]
    assert mappings() == []
    assert admin("list-triggers", TEST_ACCOUNT)[1] == {"EventSourceMappings": []}


def test_a_queue_whose_visibility_is_shorter_than_the_delivery_function_is_refused(
    sqs: Any, delivery_function: str,
) -> None:
    sqs.create_queue(QueueName="fast", Attributes={"VisibilityTimeout": "10"})
    code, out = admin("create-trigger", TEST_ACCOUNT, "fast", FUNCTION)
    assert code == 1
    assert out["message"] == ("Queue visibility timeout: 10 seconds is less than Function "
                              "timeout: 28 seconds")
    assert mappings() == []


def test_a_local_python_target_is_refused_on_a_deployed_stack(
    sqs: Any, delivery_function: str,
) -> None:
    sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "60"})
    code, out = admin("create-trigger", TEST_ACCOUNT, "orders", "python:consumers:handle")
    assert code == 1 and "local stack" in out["message"]


def test_a_second_trigger_on_one_queue_conflicts(sqs: Any, delivery_function: str) -> None:
    sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "60"})
    assert admin("create-trigger", TEST_ACCOUNT, "orders", FUNCTION)[0] == 0
    code, out = admin("create-trigger", TEST_ACCOUNT, "orders", FUNCTION + "2")
    assert (code, out["error"]) == (1, "ResourceConflictException")
    assert len(mappings()) == 1


def test_a_trigger_on_a_missing_queue_is_refused(stack: None) -> None:
    code, out = admin("create-trigger", TEST_ACCOUNT, "nope", FUNCTION)
    assert (code, out["error"]) == (1, "ResourceNotFoundException")


def test_deleting_a_queue_deletes_its_mapping(delivery_function: str, fleet: Fleet) -> None:
    sqs = fleet.sqs()  # a handler of the deployed stack: it knows the delivery function
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "60"})[
        "QueueUrl"]
    assert admin("create-trigger", TEST_ACCOUNT, "orders", FUNCTION)[0] == 0
    assert len(mappings()) == 1
    sqs.delete_queue(QueueUrl=url)
    assert mappings() == []
    assert admin("list-triggers", TEST_ACCOUNT)[1] == {"EventSourceMappings": []}
