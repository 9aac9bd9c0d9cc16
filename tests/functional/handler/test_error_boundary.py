"""Never a 500: each reproduction of the error-boundary issue, through a real boto3 client.

Every refused request gets SQS's error and leaves the store as it was: the
registry, the backing queues and the payload bucket are compared before and after.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import settings
from tests.harness import REGION, Fleet, allow_kms_key, sqs_client


def snapshot() -> dict[str, Any]:
    """Everything sealq stores: registry items, backing queues with their counts, objects."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    moto_sqs = boto3.client("sqs", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    conf = settings.get()
    items = ddb.scan(TableName=conf.queues_table)["Items"]
    queues = {}
    for url in moto_sqs.list_queues(QueueNamePrefix="sealq-").get("QueueUrls", []):
        queues[url] = moto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
        for volatile in ("LastModifiedTimestamp",):
            queues[url].pop(volatile, None)
    objects = [
        o["Key"] for o in s3.list_objects_v2(Bucket=conf.payload_bucket).get("Contents", [])
    ]
    return {"registry": sorted(json.dumps(i, sort_keys=True) for i in items),
            "queues": queues, "objects": sorted(objects)}


def refused(call: Any, **kwargs: Any) -> ClientError:
    """Run a request that must be refused with a 4xx; returns the error."""
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    status = raised.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, raised.value.response
    return raised.value


def code_of(err: ClientError) -> str:
    return str(err.response["Error"]["Code"])


# -- malformed queue URLs ------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://[::1/000000000000/q", "http://[zz]/a/b", "::::"])
def test_a_queue_url_that_does_not_parse_is_queue_does_not_exist(sqs: Any, url: str) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = [
        (sqs.send_message, {"MessageBody": "x"}),
        (sqs.receive_message, {}),
        (sqs.get_queue_attributes, {"AttributeNames": ["All"]}),
        (sqs.purge_queue, {}),
        (sqs.delete_queue, {}),
    ]
    for call, kwargs in calls:
        err = refused(call, QueueUrl=url, **kwargs)
        assert code_of(err) == "AWS.SimpleQueueService.NonExistentQueue"


# -- values SQS limits, checked before anything is written ------------------------------

SURROGATE = "\ud800"


@pytest.mark.parametrize(
    "tags",
    [
        {"": "v"},
        {"k" + SURROGATE: "v"},
        {"k": "v" + SURROGATE},
        {"k" * 129: "v"},
        {"k": "v" * 257},
        {f"k{i}": "v" * 10_000 for i in range(50)},
        {f"k{i}": "v" for i in range(51)},
    ],
    ids=["empty-key", "surrogate-key", "surrogate-value", "long-key", "long-value",
         "fifty-10k-values", "fifty-one"],
)
def test_tags_sqs_refuses_change_nothing(sqs: Any, tags: dict[str, str]) -> None:
    url = sqs.create_queue(QueueName="tagged")["QueueUrl"]
    before = snapshot()
    refused(sqs.tag_queue, QueueUrl=url, Tags=tags)
    refused(sqs.create_queue, QueueName="other", tags=tags)
    assert snapshot() == before
    assert sqs.list_queues()["QueueUrls"] == [url]  # the account still lists


@pytest.mark.parametrize(
    "attributes",
    [
        {"Policy": '{"Version": "2012-10-17", "x": "' + SURROGATE + '"}'},
        {"Policy": json.dumps({"Version": "2012-10-17", "Statement": [], "pad": "p" * 500_000})},
        {"Policy": "not json"},
        {"KmsMasterKeyId": "k" * 3000},
        {"KmsMasterKeyId": "alias/" + SURROGATE},
        {"VisibilityTimeout": " 30 "},
        {"VisibilityTimeout": "3", "Policy": "p" * 500_000},
    ],
    ids=["policy-surrogate", "policy-500k", "policy-not-json", "key-3000", "key-surrogate",
         "int-whitespace", "valid-with-invalid"],
)
def test_queue_attributes_sqs_refuses_change_nothing(
    sqs: Any, attributes: dict[str, str]
) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    before = snapshot()
    refused(sqs.set_queue_attributes, QueueUrl=url, Attributes=attributes)
    refused(sqs.create_queue, QueueName="other", Attributes=attributes)
    assert snapshot() == before
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert got["VisibilityTimeout"] == "30"
    sqs.send_message(QueueUrl=url, MessageBody="still works")


def test_an_empty_tag_key_leaves_the_queue_and_the_account_usable(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    refused(sqs.tag_queue, QueueUrl=url, Tags={"": "v"})
    sqs.tag_queue(QueueUrl=url, Tags={"team": "a"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    assert sqs.list_queues()["QueueUrls"] == [url]
    sqs.delete_queue(QueueUrl=url)


@pytest.mark.parametrize(
    "extra",
    [
        {"MessageSystemAttributes": {"Colour": {"DataType": "String", "StringValue": "x"}}},
        {"MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "Number",
                                                        "StringValue": "1"}}},
        {"MessageAttributes": {"a": {"DataType": "String." + SURROGATE, "StringValue": "x"}}},
        {"MessageAttributes": {"a": {"DataType": "String.a\x00b", "StringValue": "x"}}},
    ],
    ids=["system-name", "system-type", "datatype-surrogate", "datatype-nul"],
)
def test_message_input_sqs_refuses_stores_nothing(sqs: Any, extra: dict[str, Any]) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    before = snapshot()
    refused(sqs.send_message, QueueUrl=url, MessageBody="x", **extra)
    entries = [{"Id": "big", "MessageBody": "b" * 300_000},
               {"Id": "bad", "MessageBody": "x", **extra}]
    out = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert [f["Id"] for f in out["Failed"]] == ["bad"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=sqs.receive_message(QueueUrl=url)[
        "Messages"][0]["ReceiptHandle"])
    assert snapshot()["objects"] == before["objects"]


@pytest.mark.parametrize("attempt", ["", "x" * 129, "bad attempt"])
def test_a_receive_request_attempt_id_sqs_refuses_is_invalid(sqs: Any, attempt: str) -> None:
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    err = refused(sqs.receive_message, QueueUrl=url, ReceiveRequestAttemptId=attempt)
    assert code_of(err) in ("InvalidParameterValue", "MissingParameter")


# -- another container deleted the queue ------------------------------------------------


def test_a_queue_deleted_by_another_container_is_gone_within_the_cache_window(
    fleet: Fleet,
) -> None:
    mine, other = fleet.sqs(), fleet.sqs()
    url = mine.create_queue(QueueName="q")["QueueUrl"]
    mine.get_queue_attributes(QueueUrl=url)  # cached here
    other.delete_queue(QueueUrl=url)
    calls: list[tuple[Any, dict[str, Any]]] = [
        (mine.receive_message, {}),
        (mine.get_queue_attributes, {"AttributeNames": ["All"]}),
        (mine.purge_queue, {}),
        (mine.send_message, {"MessageBody": "x"}),
    ]
    for call, kwargs in calls:
        err = refused(call, QueueUrl=url, **kwargs)
        assert code_of(err) == "AWS.SimpleQueueService.NonExistentQueue", call


# -- backing codes the old mapping did not know ------------------------------------------


def fail_backing(clients: Any, operation: str, code: str, status: int = 400) -> None:
    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "SECRET-TEXT"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    clients.get("messages").meta.events.register(f"before-call.sqs.{operation}", fail)


def test_change_visibility_of_a_deleted_message_is_invalid_parameter_value(
    fleet: Fleet,
) -> None:
    handler, clients = fleet.container()
    sqs = sqs_client(handler, retries=1)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    fail_backing(clients, "ChangeMessageVisibility", "InvalidParameterValue")
    err = refused(sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handle,
                  VisibilityTimeout=10)
    assert code_of(err) == "InvalidParameterValue"
    assert "does not exist or is not available" in err.response["Error"]["Message"]
    assert "SECRET-TEXT" not in str(err.response)


def test_delete_with_an_expired_fifo_handle_is_invalid_parameter_value(fleet: Fleet) -> None:
    handler, clients = fleet.container()
    sqs = sqs_client(handler, retries=1)
    url = sqs.create_queue(QueueName="q.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g")
    handle = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]

    fail_backing(clients, "DeleteMessage", "InvalidParameterValue")
    err = refused(sqs.delete_message, QueueUrl=url, ReceiptHandle=handle)
    assert code_of(err) == "InvalidParameterValue"
    assert "expired" in err.response["Error"]["Message"]


# -- no half-applied changes, no lost updates --------------------------------------------


def test_a_set_queue_attributes_whose_backing_half_fails_changes_neither(fleet: Fleet) -> None:
    handler, clients = fleet.container()
    sqs = sqs_client(handler, retries=1)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    before = snapshot()
    fail_backing(clients, "SetQueueAttributes", "ServiceUnavailable", 503)
    err = refused(sqs.set_queue_attributes, QueueUrl=url,
                  Attributes={"VisibilityTimeout": "3", "Policy": ""})
    assert code_of(err) == "RequestThrottled"
    after = snapshot()
    assert after["queues"] == before["queues"]
    fresh = fleet.sqs()
    got = fresh.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert got["Attributes"]["VisibilityTimeout"] == "30"


def test_two_containers_interleaving_registry_writes_lose_nothing(fleet: Fleet) -> None:
    allow_kms_key("alias/other")
    first, second = fleet.sqs(), fleet.sqs()
    url = first.create_queue(QueueName="q")["QueueUrl"]
    second.get_queue_attributes(QueueUrl=url)  # both hold a cached copy now
    first.get_queue_attributes(QueueUrl=url)

    first.tag_queue(QueueUrl=url, Tags={"team": "a"})
    second.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "45"})
    first.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "alias/other"})
    second.tag_queue(QueueUrl=url, Tags={"cost": "b"})
    first.untag_queue(QueueUrl=url, TagKeys=["team"])
    second.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "5"})

    third = fleet.sqs()
    attrs = third.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["KmsMasterKeyId"] == "alias/other"
    assert attrs["DelaySeconds"] == "5"
    assert third.list_queue_tags(QueueUrl=url)["Tags"] == {"cost": "b"}


# -- batches leave no S3 object behind ---------------------------------------------------


def test_a_batch_refused_as_a_whole_uploads_nothing(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    before = snapshot()
    err = refused(sqs.send_message_batch, QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "b" * 300_000, "MessageGroupId": "g",
         "MessageDeduplicationId": "d"},
        {"Id": "b", "MessageBody": "x", "MessageGroupId": "g"},  # no dedup id: AWS refuses all
    ])
    assert code_of(err) == "InvalidParameterValue"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert snapshot() == before


def test_a_batch_with_one_bad_entry_uploads_only_the_good_ones(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    before = snapshot()
    out = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "b" * 300_000},
        {"Id": "b", "MessageBody": "x", "DelaySeconds": 901},
    ])
    assert [f["Id"] for f in out.get("Failed", [])] == ["b"]
    sqs.receive_message(QueueUrl=url)  # the good one went through, with its object
    assert len(snapshot()["objects"]) == len(before["objects"]) + 1


def test_a_backing_failure_after_upload_removes_the_uploaded_objects(fleet: Fleet) -> None:
    handler, clients = fleet.container()
    sqs = sqs_client(handler, retries=1)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    before = snapshot()
    fail_backing(clients, "SendMessageBatch", "InternalError", 500)
    fail_backing(clients, "SendMessage", "InternalError", 500)
    entries = [{"Id": str(i), "MessageBody": "b" * 300_000} for i in range(3)]
    err = refused(sqs.send_message_batch, QueueUrl=url, Entries=entries)
    assert code_of(err) == "RequestThrottled"
    refused(sqs.send_message, QueueUrl=url, MessageBody="b" * 300_000)
    assert snapshot() == before
