"""RedriveAllowPolicy: validated as SQS validates it, stored, returned, and checked when a
source queue names the dead-letter queue in its RedrivePolicy. On memory ports (no moto:
nothing here reaches the backing store beyond what the registry already does)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.clock import FakeClock
from tests.memory import Memory


@pytest.fixture
def sqs(clock: FakeClock) -> Any:
    return Memory(clock).sqs


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
               ["Attributes"]["QueueArn"])


def _redrive(arn: str) -> str:
    return json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 3})


def _error(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(err.value.response["Error"]["Code"]), str(err.value.response["Error"]["Message"])


def test_a_redrive_allow_policy_is_stored_and_returned(sqs: Any) -> None:
    policy = {"redrivePermission": "byQueue",
              "sourceQueueArns": ["arn:aws:sqs:us-east-1:000000000000:work"]}
    url = sqs.create_queue(QueueName="dead", Attributes={
        "RedriveAllowPolicy": json.dumps(policy)})["QueueUrl"]
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(got["RedriveAllowPolicy"]) == policy
    only = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedriveAllowPolicy"])
    assert list(only["Attributes"]) == ["RedriveAllowPolicy"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": ""})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "RedriveAllowPolicy" not in got


@pytest.mark.parametrize("value", [
    "not json", "[]", '{"redrivePermission": "everyone"}', '{"sourceQueueArns": []}',
    '{"redrivePermission": "allowAll", "extra": 1}',
    '{"redrivePermission": "byQueue", "sourceQueueArns": "arn:aws:sqs:us-east-1:1:q"}',
    '{"redrivePermission": "byQueue", "sourceQueueArns": [1]}',
])
def test_an_unreadable_redrive_allow_policy_is_refused_as_sqs_refuses_it(
    sqs: Any, value: str
) -> None:
    with pytest.raises(ClientError) as err:
        sqs.create_queue(QueueName="dead", Attributes={"RedriveAllowPolicy": value})
    assert _error(err) == (
        "InvalidAttributeValue",
        "Invalid value for the parameter RedriveAllowPolicy. Reason: Amazon SQS can't create "
        "the redrive allow policy, as it\u2019s in an unsupported format.",
    )
    assert "QueueUrls" not in sqs.list_queues()


ARN = "arn:aws:sqs:us-east-1:000000000000:q"


@pytest.mark.parametrize(("policy", "reason"), [
    ({"redrivePermission": "byQueue"},
     "When you specify the byQueue permission type, you must also specify one or more "
     "sourceQueueArns values."),
    ({"redrivePermission": "byQueue", "sourceQueueArns": []},
     "When you specify the byQueue permission type, you must also specify one or more "
     "sourceQueueArns values."),
    ({"redrivePermission": "allowAll", "sourceQueueArns": [ARN]},
     "To specify one or more source queue ARNs, you must set redrivePermission to byQueue."),
    ({"redrivePermission": "denyAll", "sourceQueueArns": [ARN]},
     "To specify one or more source queue ARNs, you must set redrivePermission to byQueue."),
    ({"redrivePermission": "byQueue", "sourceQueueArns": [f"{ARN}{n}" for n in range(11)]},
     "The maximum number of source queue ARNs you can specify is 10."),
])
def test_a_redrive_allow_policy_that_breaks_a_rule_names_the_rule(
    sqs: Any, policy: dict[str, Any], reason: str
) -> None:
    url = sqs.create_queue(QueueName="dead")["QueueUrl"]
    value = json.dumps(policy)
    with pytest.raises(ClientError) as err:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": value})
    assert _error(err) == (
        "InvalidParameterValue",
        f"Value {value} for parameter RedriveAllowPolicy is invalid. Reason: Amazon SQS can't "
        f"create the redrive allow policy. {reason}",
    )
    assert "RedriveAllowPolicy" not in sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_ten_source_queues_are_allowed(sqs: Any) -> None:
    policy = {"redrivePermission": "byQueue", "sourceQueueArns": [f"{ARN}{n}" for n in range(10)]}
    url = sqs.create_queue(QueueName="dead", Attributes={
        "RedriveAllowPolicy": json.dumps(policy)})["QueueUrl"]
    stored = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedriveAllowPolicy"])
    assert json.loads(stored["Attributes"]["RedriveAllowPolicy"]) == policy


def test_deny_all_refuses_every_source_queue(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="dead", Attributes={
        "RedriveAllowPolicy": '{"redrivePermission": "denyAll"}'})["QueueUrl"]
    redrive = _redrive(_arn(sqs, dlq))
    with pytest.raises(ClientError) as err:
        sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": redrive})
    assert _error(err) == (
        "InvalidParameterValue",
        f"Value {redrive} for parameter RedrivePolicy is invalid. Reason: The dead-letter "
        "queue's RedriveAllowPolicy does not allow this source queue.",
    )
    assert sqs.list_queues()["QueueUrls"] == [dlq]  # the source was not created


def test_by_queue_admits_only_the_named_source_queues(sqs: Any) -> None:
    allowed = sqs.create_queue(QueueName="allowed")["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    policy = {"redrivePermission": "byQueue", "sourceQueueArns": [_arn(sqs, allowed)]}
    dlq = sqs.create_queue(QueueName="dead", Attributes={
        "RedriveAllowPolicy": json.dumps(policy)})["QueueUrl"]
    redrive = _redrive(_arn(sqs, dlq))
    sqs.set_queue_attributes(QueueUrl=allowed, Attributes={"RedrivePolicy": redrive})
    with pytest.raises(ClientError) as err:
        sqs.set_queue_attributes(QueueUrl=other, Attributes={"RedrivePolicy": redrive})
    assert _error(err)[0] == "InvalidParameterValue"
    assert "RedrivePolicy" not in sqs.get_queue_attributes(
        QueueUrl=other, AttributeNames=["All"])["Attributes"]
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]
    assert sources == [allowed]


def test_allow_all_and_no_policy_admit_any_source_queue(sqs: Any) -> None:
    open_dlq = sqs.create_queue(QueueName="open", Attributes={
        "RedriveAllowPolicy": '{"redrivePermission": "allowAll"}'})["QueueUrl"]
    plain_dlq = sqs.create_queue(QueueName="plain")["QueueUrl"]
    a = sqs.create_queue(QueueName="a", Attributes={
        "RedrivePolicy": _redrive(_arn(sqs, open_dlq))})["QueueUrl"]
    b = sqs.create_queue(QueueName="b", Attributes={
        "RedrivePolicy": _redrive(_arn(sqs, plain_dlq))})["QueueUrl"]
    assert sqs.list_dead_letter_source_queues(QueueUrl=open_dlq)["queueUrls"] == [a]
    assert sqs.list_dead_letter_source_queues(QueueUrl=plain_dlq)["queueUrls"] == [b]
