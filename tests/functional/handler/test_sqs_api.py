"""The SQS API as a boto3 user sees it, served by one handler container on moto."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.clock import FakeClock
from chalicelib.protocol.md5 import md5_of_attributes
from tests.harness import ENDPOINT, REGION, Fleet, signed_handle


def backing_queue_count() -> int:
    moto_sqs = boto3.client("sqs", region_name=REGION)
    return len(moto_sqs.list_queues(QueueNamePrefix="sealq-").get("QueueUrls", []))


def error_code(excinfo: pytest.ExceptionInfo[Any]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_create_queue_returns_the_queue_url_and_is_idempotent(sqs: Any) -> None:
    attrs = {"VisibilityTimeout": "45", "KmsDataKeyReusePeriodSeconds": "600"}
    url = sqs.create_queue(QueueName="orders", Attributes=attrs)["QueueUrl"]
    assert url == f"{ENDPOINT}/000000000000/orders"
    assert sqs.create_queue(QueueName="orders", Attributes=attrs)["QueueUrl"] == url
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    assert backing_queue_count() == 1


def test_create_queue_with_other_attributes_is_refused(sqs: Any) -> None:
    sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "45"})
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "46"})
    assert backing_queue_count() == 1


@pytest.mark.parametrize(
    ("name", "attributes", "code"),
    [
        ("short-reuse", {"KmsDataKeyReusePeriodSeconds": "59"}, "InvalidAttributeValue"),
        ("long-reuse", {"KmsDataKeyReusePeriodSeconds": "86401"}, "InvalidAttributeValue"),
        ("vis", {"VisibilityTimeout": "43201"}, "InvalidAttributeValue"),
        ("words", {"DelaySeconds": "soon"}, "InvalidAttributeValue"),
        ("unknown", {"Colour": "blue"}, "InvalidAttributeName"),
        ("both-sse", {"KmsMasterKeyId": "alias/x", "SqsManagedSseEnabled": "true"},
         "InvalidAttributeName"),
        ("bad name!", {}, "InvalidParameterValue"),
        ("x" * 81, {}, "InvalidParameterValue"),
        ("nofifo", {"FifoQueue": "true"}, "InvalidParameterValue"),
    ],
)
def test_bad_create_queue_input_gets_sqs_error_and_creates_nothing(
    sqs: Any, name: str, attributes: dict[str, str], code: str
) -> None:
    with pytest.raises(sqs.exceptions.ClientError) as excinfo:
        sqs.create_queue(QueueName=name, Attributes=attributes)
    assert error_code(excinfo) == code
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert backing_queue_count() == 0


def test_unknown_queue_is_queue_does_not_exist(sqs: Any) -> None:
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as excinfo:
        sqs.get_queue_url(QueueName="nope")
    assert error_code(excinfo) == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=f"{ENDPOINT}/000000000000/nope", MessageBody="x")
    # Another account's queue, existing or not: AccessDenied alike (no existence oracle).
    with pytest.raises(ClientError) as denied:
        sqs.send_message(QueueUrl=f"{ENDPOINT}/111111111111/nope", MessageBody="x")
    assert error_code(denied) == "AccessDenied"


def test_list_queues_filters_by_prefix_and_pages(sqs: Any) -> None:
    for name in ["alpha-1", "alpha-2", "alpha-3", "beta-1"]:
        sqs.create_queue(QueueName=name)
    urls = sqs.list_queues(QueueNamePrefix="alpha")["QueueUrls"]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["alpha-1", "alpha-2", "alpha-3"]
    first = sqs.list_queues(MaxResults=2)
    assert len(first["QueueUrls"]) == 2
    rest = sqs.list_queues(MaxResults=2, NextToken=first["NextToken"])
    names = [u.rsplit("/", 1)[1] for u in first["QueueUrls"] + rest["QueueUrls"]]
    assert names == ["alpha-1", "alpha-2", "alpha-3", "beta-1"]
    assert "NextToken" not in rest


def test_queue_attributes_read_and_write_with_sqs_values(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="attrs",
        Attributes={"KmsMasterKeyId": "alias/sealq-default", "KmsDataKeyReusePeriodSeconds": "120"},
    )["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:attrs"
    assert attrs["KmsMasterKeyId"] == "alias/sealq-default"
    assert attrs["KmsDataKeyReusePeriodSeconds"] == "120"
    assert attrs["SqsManagedSseEnabled"] == "false"
    assert attrs["VisibilityTimeout"] == "30"
    assert attrs["ApproximateNumberOfMessages"] == "0"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "100"})
    only = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert only["Attributes"] == {"VisibilityTimeout": "100"}
    with pytest.raises(sqs.exceptions.InvalidAttributeValue):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "-1"})
    with pytest.raises(sqs.exceptions.InvalidAttributeName):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Colour"])
    again = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert again["Attributes"] == {"VisibilityTimeout": "100"}


def test_delete_queue_removes_it_and_its_backing_queue(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="gone")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="gone")
    assert backing_queue_count() == 0


def test_messages_round_trip_with_attributes_and_plaintext_md5s(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="round")["QueueUrl"]
    attributes: dict[str, dict[str, Any]] = {
        "trace.id": {"DataType": "String", "StringValue": "abc"},
        "trace.n": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary.gz", "BinaryValue": b"\x00\x01\xff"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="héllo", MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == hashlib.md5("héllo".encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    got = sqs.receive_message(
        QueueUrl=url, MessageAttributeNames=["trace.*"], MessageSystemAttributeNames=["All"]
    )["Messages"][0]
    assert got["Body"] == "héllo"
    assert got["MessageId"] == sent["MessageId"]
    assert set(got["MessageAttributes"]) == {"trace.id", "trace.n"}
    selected = {k: v for k, v in attributes.items() if k.startswith("trace.")}
    assert got["MD5OfMessageAttributes"] == md5_of_attributes(selected)
    assert got["Attributes"]["ApproximateReceiveCount"] == "1"
    assert got["Attributes"]["SenderId"] == "000000000000"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"MessageBody": ""}, "MissingParameter"),
        ({"MessageBody": "bad \x01 char"}, "InvalidMessageContents"),
        ({"MessageBody": "x", "DelaySeconds": 901}, "InvalidParameterValue"),
        ({"MessageBody": "x" * 1024, "MessageAttributes": {"a": {"DataType": "String",
          "StringValue": "y" * 100}}}, "InvalidParameterValue"),
        ({"MessageBody": "x", "MessageAttributes": {"AWS.x": {"DataType": "String",
          "StringValue": "y"}}}, "InvalidParameterValue"),
    ],
)
def test_bad_send_input_gets_sqs_error_and_stores_nothing(
    sqs: Any, kwargs: dict[str, Any], code: str
) -> None:
    url = sqs.create_queue(QueueName="strict", Attributes={"MaximumMessageSize": "1024"})[
        "QueueUrl"
    ]
    with pytest.raises(sqs.exceptions.ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, **kwargs)
    assert error_code(excinfo) == code
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"


def test_receive_rejects_out_of_range_parameters(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="recv")["QueueUrl"]
    for kwargs in ({"MaxNumberOfMessages": 11}, {"WaitTimeSeconds": 21},
                   {"VisibilityTimeout": 43201}):
        with pytest.raises(sqs.exceptions.ClientError) as excinfo:
            sqs.receive_message(QueueUrl=url, **kwargs)
        assert error_code(excinfo) == "InvalidParameterValue"


def test_batch_send_reports_each_entry_and_rejects_bad_batches(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="batch")["QueueUrl"]
    out = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "good", "MessageBody": "fine"},
            {"Id": "bad", "MessageBody": "bad \x02"},
        ],
    )
    assert [e["Id"] for e in out["Successful"]] == ["good"]
    assert out["Successful"][0]["MD5OfMessageBody"] == hashlib.md5(b"fine").hexdigest()
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in out["Failed"]] == [
        ("bad", "InvalidMessageContents", True)
    ]
    with pytest.raises(sqs.exceptions.BatchEntryIdsNotDistinct):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "a", "MessageBody": "2"}],
        )
    with pytest.raises(sqs.exceptions.TooManyEntriesInBatchRequest):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)]
        )
    with pytest.raises(sqs.exceptions.BatchRequestTooLong):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": "x" * 200_000} for i in range(6)],
        )
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["fine"]


def test_large_bodies_live_in_s3_until_deleted(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="large")["QueueUrl"]
    body = "L" * (1024 * 1024 - 10)
    sqs.send_message(QueueUrl=url, MessageBody=body)
    s3 = boto3.client("s3", region_name=REGION)
    bucket = settings.get().payload_bucket
    assert len(s3.list_objects_v2(Bucket=bucket).get("Contents", [])) == 1
    got = sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert got["Body"] == body
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_receive_returns_fewer_messages_rather_than_exceed_the_response_limit(
    stack: None, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALQ_RECEIVE_RESPONSE_LIMIT", "100000")
    settings.reset()
    sqs = Fleet(clock).sqs()
    url = sqs.create_queue(QueueName="big")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"{i}" + "b" * 60_000)
    seen = []
    for _ in range(3):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(got) == 1
        seen.append(got[0]["Body"][0])
    assert sorted(seen) == ["0", "1", "2"]


def test_fifo_content_deduplication_uses_a_keyed_hash(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="jobs.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    first = sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
    assert "SequenceNumber" in first
    with pytest.raises(sqs.exceptions.ClientError) as excinfo:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert error_code(excinfo) == "MissingParameter"
    got = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [m["Body"] for m in got] == ["same"]
    dedup = got[0]["Attributes"]["MessageDeduplicationId"]
    assert dedup not in (hashlib.sha256(b"same").hexdigest(), hashlib.md5(b"same").hexdigest())


def test_purge_tags_and_visibility(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="misc", tags={"team": "a"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "x"
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)


def test_unknown_action_and_malformed_json_get_sqs_errors(fleet: Fleet) -> None:
    handler = fleet.handler()
    unknown = signed_handle(
        handler,
        {"X-Amz-Target": "AmazonSQS.Explode", "Content-Type": "application/x-amz-json-1.0"},
        b"{}",
        ENDPOINT,
    )
    assert unknown.status == 400
    assert "x-amzn-query-error" in unknown.headers
    malformed = signed_handle(
        handler,
        {"X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"},
        b"{not json",
        ENDPOINT,
    )
    assert malformed.status == 400
    assert json.loads(malformed.body)["__type"].endswith("SerializationException")
