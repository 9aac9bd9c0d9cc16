"""Where sealq matches AWS to the letter (issue "AWS-exact SQS"), seen through boto3."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from chalicelib.protocol.md5 import md5_of_system_attributes
from tests.harness import REGION


def test_message_attribute_filters_take_asterisk_and_prefixes_as_aws_does(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="filters", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="msg", MessageAttributes={
        "Help.Me": {"DataType": "String", "StringValue": "Me"},
        "Hello": {"DataType": "String", "StringValue": "There"},
        "General": {"DataType": "String", "StringValue": "Kenobi"},
    })

    def names(filters: list[str]) -> set[str]:
        got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=filters)["Messages"][0]
        return set(got.get("MessageAttributes", {}))

    assert names(["*"]) == {"Help.Me", "Hello", "General"}
    assert names([".*"]) == {"Help.Me", "Hello", "General"}
    assert names(["Hel.*"]) == {"Help.Me", "Hello"}
    assert names(["Foo", "Help"]) == set()


def test_empty_policy_removes_it_and_empty_kms_key_returns_to_the_default(sqs: Any) -> None:
    policy = '{"Version": "2012-10-17", "Statement": []}'
    url = sqs.create_queue(QueueName="reset", Attributes={
        "Policy": policy, "KmsMasterKeyId": "alias/sealq-default"})["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": "", "KmsMasterKeyId": ""})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "Policy" not in attrs
    assert "KmsMasterKeyId" not in attrs
    assert attrs["SqsManagedSseEnabled"] == "true"
    sqs.send_message(QueueUrl=url, MessageBody="still sealed")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "still sealed"


def test_a_bare_queue_name_as_queue_url_names_the_callers_queue(sqs: Any) -> None:
    sqs.create_queue(QueueName="bare")
    sqs.send_message(QueueUrl="bare", MessageBody="by name")
    assert sqs.receive_message(QueueUrl="bare")["Messages"][0]["Body"] == "by name"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl="absent", MessageBody="x")


def test_fifo_batch_entry_without_group_id_fails_the_whole_request(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="groups.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    with pytest.raises(sqs.exceptions.ClientError) as excinfo:
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "ok", "MessageBody": "a", "MessageGroupId": "g"},
            {"Id": "none", "MessageBody": "b"},
        ])
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValue"  # recorded
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_fifo_high_throughput_attributes_are_kept_validated_and_fifo_only(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="fast.fifo", Attributes={
        "FifoQueue": "true", "DeduplicationScope": "messageGroup"})["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={
        "FifoThroughputLimit": "perMessageGroupId", "FifoQueue": "true"})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["DeduplicationScope"], attrs["FifoThroughputLimit"]) == (
        "messageGroup", "perMessageGroupId")
    with pytest.raises(sqs.exceptions.InvalidAttributeValue):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"DeduplicationScope": "global"})
    plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.set_queue_attributes(QueueUrl=plain, Attributes={"FifoThroughputLimit": "perQueue"})
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.create_queue(QueueName="flagged", Attributes={"FifoQueue": "false"})


def test_error_texts_echo_values_whole_and_empty_lists_are_left_out(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="texts")["QueueUrl"]
    with pytest.raises(sqs.exceptions.ClientError) as excinfo:
        sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)
    assert excinfo.value.response["Error"]["Message"] == (
        "Value 21 for parameter WaitTimeSeconds is invalid. "
        "Reason: Must be >= 0 and <= 20, if provided.")
    dedup = "d" * 120
    with pytest.raises(sqs.exceptions.ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId=dedup)
    assert f"Value {dedup} for parameter" in excinfo.value.response["Error"]["Message"]
    sent = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}])
    assert "Failed" not in sent
    assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="none")


TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"


def test_the_trace_header_is_sealed_returned_and_its_md5_answered(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="traced", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"]
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="x", MessageSystemAttributes=system)
    assert sent["MD5OfMessageSystemAttributes"] == md5_of_system_attributes(system)
    batch = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "y", "MessageSystemAttributes": system}])
    assert batch["Successful"][0]["MD5OfMessageSystemAttributes"] == sent[
        "MD5OfMessageSystemAttributes"]
    for names in (["AWSTraceHeader"], ["All"]):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  MessageSystemAttributeNames=names)["Messages"]
        assert {m["Attributes"]["AWSTraceHeader"] for m in got} == {TRACE}
    untraced = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["SenderId"])
    assert "AWSTraceHeader" not in untraced["Messages"][0]["Attributes"]
    # Sealed like the body: the backing store never sees it.
    moto = boto3.client("sqs", region_name=REGION)
    for backing in moto.list_queues(QueueNamePrefix="sealq-")["QueueUrls"]:
        stored = moto.receive_message(QueueUrl=backing, MaxNumberOfMessages=10,
                                      MessageSystemAttributeNames=["All"], VisibilityTimeout=0)
        assert TRACE not in json.dumps(stored)


def test_a_group_id_on_a_standard_queue_is_kept_and_returned(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="fair")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="tenant-7")
    got = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["MessageGroupId"])
    assert got["Messages"][0]["Attributes"] == {"MessageGroupId": "tenant-7"}
