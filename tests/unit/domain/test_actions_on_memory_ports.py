"""The message and action logic on in-memory ports: no moto, a real boto3 client in front.

The same handler code as in AWS, built by the composition root over the memory
ports and key service, so failures the domain must survive are injected in
plain Python.
"""

from __future__ import annotations

import pytest

from chalicelib.clock import FakeClock
from chalicelib.protocol.md5 import md5_of_attributes
from chalicelib.storage.errors import Transient
from tests.harness import sqs_client
from tests.memory import Memory


@pytest.fixture
def memory(clock: FakeClock) -> Memory:
    return Memory(clock)


def test_messages_round_trip_with_attributes_on_memory_ports(memory: Memory) -> None:
    sqs = memory.sqs
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    attributes = {"kind": {"DataType": "String", "StringValue": "book"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(
        {"kind": {"DataType": "String", "StringValue": "book"}})
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert (got["Body"], got["MessageAttributes"]["kind"]["StringValue"]) == ("hello", "book")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert "Messages" not in sqs.receive_message(QueueUrl=url)


def test_the_warm_path_asks_the_key_service_nothing(memory: Memory) -> None:
    url = memory.sqs.create_queue(QueueName="q")["QueueUrl"]
    memory.sqs.send_message(QueueUrl=url, MessageBody="cold")
    calls = memory.keys.calls
    for n in range(50):
        memory.sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
        for m in memory.sqs.receive_message(QueueUrl=url).get("Messages", []):
            memory.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert memory.keys.calls == calls


def test_large_bodies_live_in_the_payload_store_until_deleted(memory: Memory) -> None:
    url = memory.sqs.create_queue(QueueName="q")["QueueUrl"]
    memory.sqs.send_message(QueueUrl=url, MessageBody="x" * 400_000)
    assert len(memory.ports.payloads.objects) == 1  # type: ignore[attr-defined]
    got = memory.sqs.receive_message(QueueUrl=url)["Messages"][0]
    assert got["Body"] == "x" * 400_000
    memory.sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert memory.ports.payloads.objects == {}  # type: ignore[attr-defined]


def test_a_redriven_message_opens_in_its_dead_letter_queue(memory: Memory) -> None:
    sqs = memory.sqs
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    source = sqs.create_queue(QueueName="source", Attributes={
        "RedrivePolicy": f'{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": 1}}'})["QueueUrl"]
    sqs.send_message(QueueUrl=source, MessageBody="poison")
    sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=source)
    got = sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=["All"])["Messages"][0]
    assert got["Body"] == "poison"
    assert got["Attributes"]["DeadLetterQueueSourceArn"].endswith(":source")


def test_a_transient_failure_while_opening_hands_every_fetched_message_back(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqs = sqs_client(memory.handler, retries=1)  # see the error, not the SDK's retry
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody="x" * 300_000 + str(n))  # S3 path
    payloads = memory.ports.payloads
    real_get = payloads.get
    calls = {"n": 0}

    def flaky_get(bucket: str, key: str) -> bytes:
        calls["n"] += 1
        if calls["n"] == 2:  # the second message's body: S3 says SlowDown
            raise Transient("s3", "SlowDown")
        return real_get(bucket, key)

    monkeypatch.setattr(payloads, "get", flaky_get)
    with pytest.raises(sqs.exceptions.RequestThrottled):
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    # Nothing was hidden: all three are visible again at once, the first one included.
    monkeypatch.setattr(payloads, "get", real_get)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 3
    # And the SDK's own retry of the retryable error gets them in one call.
    for m in got:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                      VisibilityTimeout=0)
    calls["n"] = 0
    monkeypatch.setattr(payloads, "get", flaky_get)
    assert len(memory.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 3


def test_tags_and_attributes_on_memory_ports(memory: Memory) -> None:
    sqs = memory.sqs
    url = sqs.create_queue(QueueName="q", tags={"team": "a"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"cost": "b"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"cost": "b"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5",
                                                       "Policy": '{"Version": "2012-10-17"}'})
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "5" and "Policy" not in attrs
