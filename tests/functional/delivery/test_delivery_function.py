"""The delivery function over moto: fed the events a Lambda event source mapping builds
from moto's backing queues, with the tenant's function invoked through its port."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.delivery.deliver import Delivery, Invocation
from chalicelib.keyservice.transport import InProcessTransport, KeyServiceClient
from chalicelib.storage.backing import SqsMessageStore
from chalicelib.storage.payloads import S3PayloadStore
from chalicelib.storage.quarantine import S3QuarantineStore
from chalicelib.storage.queue_table import DynamoQueueTable
from tests.harness import REGION, SESSION, TEST_ACCOUNT, Fleet
from tests.triggers import Recording, create, delivery_over, trigger_operations
from tools.local.triggers import mapping_event


class Triggered:
    """A moto stack with triggers: the fleet's handler for clients, a delivery container
    on the fleet's key service, and moto's backing queues read as a mapping reads them."""

    def __init__(self, fleet: Fleet, sqs: Any) -> None:
        conf = settings.get()
        self.fleet = fleet
        self.sqs = sqs
        self.clients = Clients(SESSION, conf.region, conf.aws_endpoint)
        self.table = DynamoQueueTable(self.clients.get("queues"), conf.queues_table)
        self.target = Recording()
        self.delivery: Delivery = delivery_over(
            table=self.table,
            store=SqsMessageStore(self.clients.get("messages")),
            payloads=S3PayloadStore(self.clients.get("payloads"), conf.payload_bucket),
            quarantine=S3QuarantineStore(self.clients.get("payloads"), conf.payload_bucket),
            key_service=KeyServiceClient(InProcessTransport(fleet.cores[0])),
            targets=self.target, clock=fleet.clock)
        self.ops = trigger_operations(self.table, fleet.clock)
        self.backing = boto3.client("sqs", region_name=REGION)

    def record(self, name: str) -> Any:
        found = self.table.get(TEST_ACCOUNT, name)
        assert found is not None
        return found

    def poll(self, name: str, count: int = 10) -> dict[str, Any]:
        """One mapping poll of the queue's backing queue, as Lambda's event."""
        record = self.record(name)
        got = self.backing.receive_message(
            QueueUrl=record.backing_url, MaxNumberOfMessages=count,
            MessageSystemAttributeNames=["All"]).get("Messages", [])
        return mapping_event(got, record.backing_arn, REGION)

    def deliver(self, name: str) -> tuple[dict[str, Any], set[str]]:
        """Poll, deliver, and delete what the answer does not name, as a mapping does."""
        event = self.poll(name)
        answer = self.delivery.handle(event)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        url = self.record(name).backing_url
        for rec in event["Records"]:
            if rec["messageId"] not in failed:
                self.backing.delete_message(QueueUrl=url, ReceiptHandle=rec["receiptHandle"])
        return event, failed


@pytest.fixture
def triggered(fleet: Fleet, sqs: Any) -> Triggered:
    return Triggered(fleet, sqs)


def test_the_function_gets_opened_records_with_every_attribute_and_the_sealq_arn(
    triggered: Triggered,
) -> None:
    url = triggered.sqs.create_queue(QueueName="orders")["QueueUrl"]
    create(triggered.ops, "orders")
    sent = triggered.sqs.send_message(
        QueueUrl=url, MessageBody='{"order": 7}',
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"},
                           "b": {"DataType": "Binary", "BinaryValue": b"\x01"}},
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String",
                                                    "StringValue": "Root=1-abc"}})
    event, failed = triggered.deliver("orders")
    assert failed == set()
    sealed = event["Records"][0]["body"]
    assert "order" not in sealed  # the mapping sees only the sealed envelope
    (record,) = triggered.target.records
    assert record["body"] == '{"order": 7}'
    assert record["messageId"] == sent["MessageId"]
    assert record["md5OfBody"] == sent["MD5OfMessageBody"] == hashlib.md5(
        b'{"order": 7}').hexdigest()
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert record["messageAttributes"]["b"]["binaryValue"] == base64.b64encode(b"\x01").decode()
    assert record["eventSourceARN"] == f"arn:aws:sqs:{REGION}:{TEST_ACCOUNT}:orders"
    assert record["attributes"]["AWSTraceHeader"] == "Root=1-abc"
    assert record["attributes"]["SenderId"] == TEST_ACCOUNT
    assert set(record["attributes"]) >= {"ApproximateReceiveCount", "SentTimestamp",
                                         "ApproximateFirstReceiveTimestamp"}
    # Delivered: the mapping deleted it.
    assert triggered.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_fifo_records_carry_the_fifo_attributes(triggered: Triggered) -> None:
    url = triggered.sqs.create_queue(QueueName="f.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    create(triggered.ops, "f.fifo")
    sent = triggered.sqs.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="g1")
    triggered.deliver("f.fifo")
    (record,) = triggered.target.records
    attributes = record["attributes"]
    assert attributes["MessageGroupId"] == "g1"
    assert attributes["SequenceNumber"] == sent["SequenceNumber"]
    assert attributes["MessageDeduplicationId"]


def test_a_failing_function_redrives_to_the_dead_letter_queue_where_the_message_opens(
    triggered: Triggered,
) -> None:
    sqs = triggered.sqs
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="work", Attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})[
        "QueueUrl"]
    create(triggered.ops, "work")
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    triggered.target.answer = lambda event: Invocation(error="Unhandled")
    for _ in range(2):
        _, failed = triggered.deliver("work")
        assert len(failed) == 1  # the function failed: it stays
    event, _ = triggered.deliver("work")  # past maxReceiveCount: the backing queue redrove it
    assert event["Records"] == []
    (moved,) = sqs.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
    assert moved["Body"] == "poison"  # still sealed there, and opens there
    assert moved["Attributes"]["DeadLetterQueueSourceArn"].endswith(":work")
    assert [r["body"] for r in triggered.target.records] == ["poison", "poison"]


def test_a_tampered_message_in_a_batch_is_quarantined_and_the_rest_delivered(
    triggered: Triggered,
) -> None:
    url = triggered.sqs.create_queue(QueueName="mixed")["QueueUrl"]
    create(triggered.ops, "mixed")
    triggered.sqs.send_message(QueueUrl=url, MessageBody="good one")
    record = triggered.record("mixed")
    forged = base64.b64encode(b"\x02" + b"\x00" * 200).decode()
    triggered.backing.send_message(QueueUrl=record.backing_url, MessageBody=forged)
    triggered.sqs.send_message(QueueUrl=url, MessageBody="good two")
    _, failed = triggered.deliver("mixed")
    assert failed == set()
    assert sorted(r["body"] for r in triggered.target.records) == ["good one", "good two"]
    listed = triggered.clients.get("payloads").list_objects_v2(
        Bucket=settings.get().payload_bucket, Prefix=f"quarantine/{record.queue_id}/")
    assert listed["KeyCount"] == 1


def test_filters_apply_to_the_opened_body(triggered: Triggered) -> None:
    url = triggered.sqs.create_queue(QueueName="filtered")["QueueUrl"]
    create(triggered.ops, "filtered", filters=['{"body": {"type": ["order"]}}'])
    triggered.sqs.send_message(QueueUrl=url, MessageBody='{"type": "order"}')
    triggered.sqs.send_message(QueueUrl=url, MessageBody='{"type": "ping"}')
    _, failed = triggered.deliver("filtered")
    assert failed == set()
    assert [r["body"] for r in triggered.target.records] == ['{"type": "order"}']
    # The filtered one is gone, as Lambda deletes what its filters drop.
    assert triggered.sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_warm_deliveries_call_kms_never_and_log_no_plaintext(
    triggered: Triggered, caplog: pytest.LogCaptureFixture,
) -> None:
    url = triggered.sqs.create_queue(QueueName="quiet")["QueueUrl"]
    create(triggered.ops, "quiet")
    secret_body = "the plaintext nobody may log 8c1d"
    triggered.sqs.send_message(QueueUrl=url, MessageBody=secret_body)
    triggered.deliver("quiet")  # warms the delivery container's tier-1 cache
    before = triggered.fleet.kms.total("Decrypt") + triggered.fleet.kms.total("GenerateDataKey")
    caplog.set_level(logging.DEBUG, logger="sealq")
    for n in range(5):
        triggered.sqs.send_message(QueueUrl=url, MessageBody=f"{secret_body} {n}")
    triggered.deliver("quiet")
    after = triggered.fleet.kms.total("Decrypt") + triggered.fleet.kms.total("GenerateDataKey")
    assert after == before
    assert len(triggered.target.records) == 6
    assert not [r for r in caplog.records if secret_body in r.getMessage()]
    delivered = [r for r in caplog.records if r.name == "sealq.delivery"]
    assert delivered and "delivered 5" in delivered[-1].getMessage()


def test_deleting_the_queue_deletes_its_trigger(triggered: Triggered) -> None:
    url = triggered.sqs.create_queue(QueueName="gone")["QueueUrl"]
    create(triggered.ops, "gone")
    backing_arn = triggered.record("gone").backing_arn
    assert triggered.table.locate(backing_arn) == (TEST_ACCOUNT, "gone")
    triggered.sqs.delete_queue(QueueUrl=url)
    assert triggered.table.locate(backing_arn) is None
    triggered.sqs.create_queue(QueueName="gone")
    assert triggered.ops.list(TEST_ACCOUNT) == []  # the new queue has none


@pytest.fixture
def entry(stack: None) -> Iterator[Any]:
    """The delivery Lambda's entry point as Lambda calls it, its container built from
    the environment on first use (and forgotten after the test)."""
    import app as sealq_app
    from chalicelib.delivery import process

    settings.reset()
    process.reset()
    yield sealq_app.delivery
    process.reset()
    settings.reset()


def _event(*ids: str, source: str) -> dict[str, Any]:
    return {"Records": [{"messageId": i, "receiptHandle": f"rh-{i}", "body": "sealed",
                         "attributes": {}, "messageAttributes": {}, "md5OfBody": "-",
                         "eventSource": "aws:sqs", "eventSourceARN": source,
                         "awsRegion": REGION} for i in ids]}


def test_the_lambda_entry_holds_a_batch_whose_backing_queue_is_no_queue(entry: Any) -> None:
    unknown = f"arn:aws:sqs:{REGION}:123456789012:sealq-no-such-backing-queue"
    assert entry(_event("m1", "m2", source=unknown), None) == {
        "batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}


def test_a_delivery_container_that_cannot_start_fails_every_record_and_raises_nothing(
    entry: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SEALQ_ACCOUNT", "not-an-account")  # settings refuse to load
    with caplog.at_level(logging.ERROR, logger="sealq.delivery"):
        answer = entry({"Records": [{"messageId": "m1"}, {"messageId": "m2"}, {}, "junk"]},
                       None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"},
                                            {"itemIdentifier": "m2"}]}
    assert "delivery could not start: SettingsError" in caplog.text
    assert "not-an-account" not in caplog.text
