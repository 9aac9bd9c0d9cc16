"""A pointer to a payload S3 will not hand over, as S3 answers it on a real account.

S3 answers ``GetObject`` on a missing key with 403 AccessDenied unless the caller may
``s3:ListBucket`` (moto always answers 404 NoSuchKey), so the 403 is injected here with
a botocore hook on the payload client, after the object was really deleted. The
missing or unreadable object is the message's own fault, never the request's: the
message goes to the quarantine, the others are delivered, and a message move task
moves the others and completes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict

from chalicelib import settings
from chalicelib.clock import FakeClock
from chalicelib.handler.frontend import Frontend
from tests.harness import REGION, Fleet, sqs_client

ACCOUNT = "000000000000"
BIG = "b" * 300_000  # above the 256 KiB inline limit: its sealed body goes to S3


class _Empty:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def s3_denies_get_object(client: Any) -> list[str]:
    """From now on ``client``'s GetObject is answered as S3 answers a missing key to a
    caller without s3:ListBucket: 403 AccessDenied. Returns the keys it refused."""
    refused: list[str] = []

    def deny(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        refused.append(params["url_path"])
        parsed = {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                  "ResponseMetadata": {"HTTPStatusCode": 403}}
        return AWSResponse("https://s3.test/", 403, HeadersDict({}), _Empty()), parsed

    client.meta.events.register_first("before-call.s3.GetObject", deny)
    return refused


def delete_every_payload() -> int:
    """Remove every payload object (the pointers now point to nothing); how many."""
    s3 = boto3.client("s3", region_name=REGION)
    bucket = settings.get().payload_bucket
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="payloads/").get("Contents", [])
    for item in listed:
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    return len(listed)


def quarantined() -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=settings.get().payload_bucket, Prefix="quarantine/")
    return [o["Key"] for o in listed.get("Contents", [])]


def arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def test_a_payload_s3_refuses_with_403_is_quarantined_and_the_others_are_delivered(
    fleet: Fleet,
) -> None:
    producer = fleet.sqs()
    url = producer.create_queue(QueueName="q")["QueueUrl"]
    producer.send_message(QueueUrl=url, MessageBody="small one")
    producer.send_message(QueueUrl=url, MessageBody=BIG)
    producer.send_message(QueueUrl=url, MessageBody="small two")
    assert delete_every_payload() == 1
    handler, clients = fleet.container()
    refused = s3_denies_get_object(clients.get("payloads"))
    consumer = sqs_client(handler, retries=1)

    got = consumer.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert sorted(m["Body"] for m in got) == ["small one", "small two"]
    assert refused  # S3 was asked, and said 403
    assert len(quarantined()) == 1
    for message in got:
        consumer.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    # Quarantined for good: it never comes back, to this consumer or any other.
    attrs = producer.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_queue_whose_only_message_s3_refuses_answers_an_empty_receive_not_an_error(
    fleet: Fleet,
) -> None:
    producer = fleet.sqs()
    url = producer.create_queue(QueueName="q")["QueueUrl"]
    producer.send_message(QueueUrl=url, MessageBody=BIG)
    delete_every_payload()
    handler, clients = fleet.container()
    s3_denies_get_object(clients.get("payloads"))

    answer = sqs_client(handler, retries=1).receive_message(QueueUrl=url)

    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert answer.get("Messages", []) == []
    assert len(quarantined()) == 1


def _dead_letters(handler: Frontend) -> tuple[Any, list[dict[str, Any]]]:
    """A queue ``work`` redriving into ``dead`` after one receive, and the task events
    the handler dispatches (run by the test, not a thread)."""
    events: list[dict[str, Any]] = []
    handler.actions.services.moves_or_fail().dispatch = events.append
    sqs = sqs_client(handler, retries=1)
    sqs.create_queue(QueueName="dead")
    policy = json.dumps({"deadLetterTargetArn": arn("dead"), "maxReceiveCount": 1})
    sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})
    sqs.create_queue(QueueName="retry")
    return sqs, events


@pytest.mark.parametrize("destination", [None, "retry"], ids=["to-source", "to-retry"])
def test_a_move_task_quarantines_a_payload_s3_refuses_and_moves_the_rest(
    stack: None, clock: FakeClock, destination: str | None,
) -> None:
    fleet = Fleet(clock)
    handler, clients = fleet.container()
    sqs, events = _dead_letters(handler)
    work = sqs.get_queue_url(QueueName="work")["QueueUrl"]
    for body in ("first", BIG, "last"):
        sqs.send_message(QueueUrl=work, MessageBody=body)
    sqs.receive_message(QueueUrl=work, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=work)  # all three in the DLQ
    delete_every_payload()
    s3_denies_get_object(clients.get("payloads"))

    sqs.start_message_move_task(
        SourceArn=arn("dead"), **({"DestinationArn": arn(destination)} if destination else {}))
    handler.actions.services.moves_or_fail().run(events.pop())

    (task,) = sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert task["Status"] == "COMPLETED", task
    target = sqs.get_queue_url(QueueName=destination or "work")["QueueUrl"]
    moved = sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in moved) == ["first", "last"]
    assert len(quarantined()) == 1
    dead = sqs.get_queue_url(QueueName="dead")["QueueUrl"]
    assert "Messages" not in sqs.receive_message(QueueUrl=dead)
