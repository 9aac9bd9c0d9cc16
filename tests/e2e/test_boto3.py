"""sealq through an unmodified boto3 client, against SQS's documented behaviour."""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from chalicelib import settings
from tests.e2e import error_codes, md5_hex, md5_of_message_attributes, receive

pytestmark = pytest.mark.e2e

NameFactory = Callable[[str], str]
KMS_ATTRIBUTES = {"KmsMasterKeyId": "alias/sealq-default", "KmsDataKeyReusePeriodSeconds": "300"}
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "color": {"DataType": "String", "StringValue": "bl\u00fc"},
    "count": {"DataType": "Number", "StringValue": "42"},
    "blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))},
    "price": {"DataType": "Number.euros", "StringValue": "12.50"},
}


def _account_of(queue_url: str) -> str:
    account = urlsplit(queue_url).path.strip("/").split("/")[0]
    assert re.fullmatch(r"\d{12}", account), queue_url
    return account


def _body(size: int) -> str:
    rng = random.Random(size)
    return "".join(rng.choices(string.ascii_letters + string.digits, k=size))


@pytest.fixture
def queue(sqs: Any, queue_name: NameFactory) -> str:
    """A fresh queue with default attributes; its URL."""
    return str(sqs.create_queue(QueueName=queue_name("q"))["QueueUrl"])


# Queues


def test_create_queue_returns_a_url_under_the_endpoint(
    sqs: Any, sealq_endpoint: str, queue_name: NameFactory
) -> None:
    name = queue_name("create")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url.startswith(sealq_endpoint + "/")
    assert url == f"{sealq_endpoint}/{_account_of(url)}/{name}"


def test_create_queue_again_with_the_same_attributes_returns_the_same_url(
    sqs: Any, queue_name: NameFactory
) -> None:
    name = queue_name("idem")
    first = sqs.create_queue(QueueName=name, Attributes=KMS_ATTRIBUTES)["QueueUrl"]
    again = sqs.create_queue(QueueName=name, Attributes=KMS_ATTRIBUTES)["QueueUrl"]
    assert again == first


def test_create_queue_again_with_different_attributes_is_queue_name_exists(
    sqs: Any, queue_name: NameFactory
) -> None:
    name = queue_name("exists")
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})
    with pytest.raises(sqs.exceptions.QueueNameExists):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})


def test_get_queue_url_returns_the_url_create_queue_gave(sqs: Any, queue_name: NameFactory) -> None:
    name = queue_name("url")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url


def test_list_queues_filters_by_name_prefix(sqs: Any, queue_name: NameFactory) -> None:
    prefix = queue_name("list")
    mine = {
        sqs.create_queue(QueueName=f"{prefix}-a")["QueueUrl"],
        sqs.create_queue(QueueName=f"{prefix}-b")["QueueUrl"],
    }
    other = sqs.create_queue(QueueName=queue_name("other"))["QueueUrl"]
    listed = set(sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"])
    assert listed == mine
    assert other in sqs.list_queues()["QueueUrls"]
    assert sqs.list_queues(QueueNamePrefix=queue_name("none")).get("QueueUrls", []) == []


def test_get_queue_attributes_all_has_sqs_defaults_and_the_queue_arn(
    sqs: Any, queue_name: NameFactory
) -> None:
    name = queue_name("defaults")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == f"arn:aws:sqs:us-east-1:{_account_of(url)}:{name}"
    assert attributes["VisibilityTimeout"] == "30"
    assert attributes["MessageRetentionPeriod"] == "345600"
    assert attributes["DelaySeconds"] == "0"
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attributes["MaximumMessageSize"] == "1048576"
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert int(attributes["CreatedTimestamp"]) > 1_600_000_000
    # SQS returns KmsMasterKeyId only for a queue that was given one; sealq still
    # encrypts such a queue, under its default key (the analogue of SSE-SQS).
    assert "KmsMasterKeyId" not in attributes


def test_kms_attributes_are_kept_and_returned(sqs: Any, queue_name: NameFactory) -> None:
    name = queue_name("kms")
    url = sqs.create_queue(QueueName=name, Attributes=KMS_ATTRIBUTES)["QueueUrl"]
    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert everything["KmsMasterKeyId"] == "alias/sealq-default"
    assert everything["KmsDataKeyReusePeriodSeconds"] == "300"
    chosen = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["QueueArn", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"],
    )["Attributes"]
    assert chosen == {
        "QueueArn": f"arn:aws:sqs:us-east-1:{_account_of(url)}:{name}",
        "KmsMasterKeyId": "alias/sealq-default",
        "KmsDataKeyReusePeriodSeconds": "300",
    }


def test_get_queue_attributes_returns_only_the_names_asked_for(sqs: Any, queue: str) -> None:
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    assert set(attributes["Attributes"]) == {"QueueArn"}
    assert re.fullmatch(
        r"arn:aws:sqs:us-east-1:\d{12}:e2e-q-[0-9a-f]{10}", attributes["Attributes"]["QueueArn"]
    )


def test_set_queue_attributes_changes_the_reuse_period(sqs: Any, queue_name: NameFactory) -> None:
    url = sqs.create_queue(QueueName=queue_name("set"), Attributes=KMS_ATTRIBUTES)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsDataKeyReusePeriodSeconds": "600"})
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["KmsDataKeyReusePeriodSeconds"])
    assert got["Attributes"] == {"KmsDataKeyReusePeriodSeconds": "600"}


def test_delete_queue_then_get_queue_url_is_queue_does_not_exist(
    sqs: Any, queue_name: NameFactory
) -> None:
    name = queue_name("gone")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)
    assert url not in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])


def test_operations_on_an_unknown_queue_are_queue_does_not_exist(
    sqs: Any, queue: str, queue_name: NameFactory
) -> None:
    unknown = queue.rsplit("/", 1)[0] + "/" + queue_name("unknown")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=unknown.rsplit("/", 1)[1])
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=unknown, MessageBody="hello")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.receive_message(QueueUrl=unknown)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_attributes(QueueUrl=unknown, AttributeNames=["All"])


@pytest.mark.parametrize("period", ["59", "86401", "five"])
def test_an_invalid_reuse_period_is_refused_and_creates_nothing(
    sqs: Any, queue_name: NameFactory, period: str
) -> None:
    name = queue_name("bad")
    with pytest.raises(ClientError) as caught:
        sqs.create_queue(
            QueueName=name,
            Attributes={
                "KmsMasterKeyId": "alias/sealq-default",
                "KmsDataKeyReusePeriodSeconds": period,
            },
        )
    assert "InvalidAttributeValue" in error_codes(caught.value)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []) == []
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName=name)


def test_an_invalid_queue_name_is_refused(sqs: Any) -> None:
    with pytest.raises(ClientError) as caught:
        sqs.create_queue(QueueName="no spaces allowed")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error_codes(caught.value) & {"InvalidParameterValue", "InvalidAttributeValue"}


# Messages


def test_send_message_returns_the_md5_of_the_body_and_a_message_id(sqs: Any, queue: str) -> None:
    body = "h\u00e9llo, w\u00f6rld \u2713"
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert re.fullmatch(r"[0-9a-f-]{36}", sent["MessageId"])
    assert "MD5OfMessageAttributes" not in sent


def test_received_body_is_the_plaintext_with_its_md5_and_a_receipt_handle(
    sqs: Any, queue: str
) -> None:
    body = "h\u00e9llo, w\u00f6rld \u2713"
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    (message,) = receive(sqs, queue)
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5_hex(body)
    assert message["MessageId"] == sent["MessageId"]
    assert message["ReceiptHandle"]
    assert "MessageAttributes" not in message


def test_message_attributes_round_trip_with_their_md5(sqs: Any, queue: str) -> None:
    sent = sqs.send_message(
        QueueUrl=queue, MessageBody="with attributes", MessageAttributes=ATTRIBUTES
    )
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(ATTRIBUTES)
    (message,) = receive(sqs, queue, MessageAttributeNames=["All"])
    assert message["Body"] == "with attributes"
    assert message["MessageAttributes"] == ATTRIBUTES
    assert message["MD5OfMessageAttributes"] == md5_of_message_attributes(ATTRIBUTES)


def test_only_the_requested_attributes_come_back_with_their_md5(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="x", MessageAttributes=ATTRIBUTES)
    (message,) = receive(sqs, queue, MessageAttributeNames=["color", "blob"])
    chosen = {name: ATTRIBUTES[name] for name in ("color", "blob")}
    assert message["MessageAttributes"] == chosen
    assert message["MD5OfMessageAttributes"] == md5_of_message_attributes(chosen)


def test_delete_message_removes_it_for_good(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="delete me")
    (first,) = receive(sqs, queue, VisibilityTimeout=0)
    # Visibility 0: the message is immediately receivable again, with a new handle.
    (again,) = receive(sqs, queue, VisibilityTimeout=0)
    assert again["MessageId"] == first["MessageId"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=again["ReceiptHandle"])
    assert receive(sqs, queue, timeout=3, VisibilityTimeout=0) == []


def _tampered(handle: str) -> str:
    middle = len(handle) // 2
    replacement = "A" if handle[middle] != "A" else "B"
    return handle[:middle] + replacement + handle[middle + 1 :]


def test_a_forged_receipt_handle_is_receipt_handle_is_invalid(sqs: Any, queue: str) -> None:
    sqs.send_message(QueueUrl=queue, MessageBody="keep me")
    (message,) = receive(sqs, queue, VisibilityTimeout=0)
    for forged in ("forged", _tampered(message["ReceiptHandle"])):
        with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=forged)
        with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
            sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=forged, VisibilityTimeout=0)
    (still_there,) = receive(sqs, queue)
    assert still_there["MessageId"] == message["MessageId"]


def test_a_receipt_handle_from_another_queue_cannot_delete(
    sqs: Any, queue: str, queue_name: NameFactory
) -> None:
    other = sqs.create_queue(QueueName=queue_name("other"))["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="mine")
    sqs.send_message(QueueUrl=other, MessageBody="theirs")
    (mine,) = receive(sqs, queue, VisibilityTimeout=0)
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=other, ReceiptHandle=mine["ReceiptHandle"])
    (theirs,) = receive(sqs, other)
    assert theirs["Body"] == "theirs"
    (still_mine,) = receive(sqs, queue)
    assert still_mine["Body"] == "mine"


@pytest.mark.parametrize("size", [300 * 1024, 1024 * 1024], ids=["300KiB", "1MiB"])
def test_large_bodies_round_trip(sqs: Any, queue: str, size: int) -> None:
    body = _body(size)
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    (message,) = receive(sqs, queue)
    assert len(message["Body"]) == size
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5_hex(body)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert receive(sqs, queue, timeout=2) == []


@pytest.mark.parametrize("size", [300 * 1024, 1024 * 1024], ids=["300KiB", "1MiB"])
def test_large_bodies_are_stored_sealed_in_the_payload_bucket(
    sqs: Any, backend_s3: Any, queue: str, size: int
) -> None:
    bucket = settings.from_environ({}).payload_bucket  # the server runs on the defaults

    def stored() -> dict[str, str]:
        pages = backend_s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}

    before = stored()
    body = _body(size)
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    new = set(stored()) - set(before)
    assert new, "a body this large goes to S3"
    for key in new:
        data = backend_s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body[:64].encode() not in data
        assert body[size // 2 : size // 2 + 64].encode() not in data
    (message,) = receive(sqs, queue)
    assert message["Body"] == body


def test_a_body_over_1_mib_is_invalid_parameter_value(sqs: Any, queue: str) -> None:
    with pytest.raises(ClientError) as caught:
        sqs.send_message(QueueUrl=queue, MessageBody=_body(1024 * 1024 + 1))
    assert "InvalidParameterValue" in error_codes(caught.value)
    assert receive(sqs, queue, timeout=2) == []


# Message move tasks (the local server runs the worker on a background thread)


def test_a_dead_letter_redrive_runs_in_the_background_of_the_local_server(
    sqs: Any, queue_name: NameFactory
) -> None:
    dlq = sqs.create_queue(QueueName=queue_name("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source = sqs.create_queue(QueueName=queue_name("src"),
                              Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=source, MessageBody=f"m{n}")
    while sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10,
                              VisibilityTimeout=0).get("Messages"):
        pass  # past maxReceiveCount: the backing queue moves them to the DLQ
    sqs.start_message_move_task(SourceArn=dlq_arn)
    deadline = time.monotonic() + 20
    while True:
        (task,) = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
        if task["Status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 3)
    got = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["m0", "m1", "m2"]
