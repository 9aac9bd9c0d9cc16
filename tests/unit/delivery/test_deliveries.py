"""A trigger's deliveries on memory ports: what the function gets, what stays, what goes."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from chalicelib.clock import FakeClock
from chalicelib.delivery.deliver import Delivery, Invocation
from chalicelib.keyservice.api import KeyServiceError
from chalicelib.storage.ports import BackingMessage
from tests.memory import Memory
from tests.triggers import Recording, create, delivery_over, mapping_records, trigger_operations

ACCOUNT = "000000000000"


class Bench:
    """A memory stack with one trigger on queue ``q`` and its delivery."""

    def __init__(self, clock: FakeClock) -> None:
        self.memory = Memory(clock)
        self.sqs = self.memory.sqs
        self.ports = self.memory.ports
        self.target = Recording()
        self.delivery: Delivery = delivery_over(
            table=self.ports.queues, store=self.ports.messages, payloads=self.ports.payloads,
            quarantine=self.ports.quarantine, key_service=self.memory.keys,
            targets=self.target, clock=clock)
        self.ops = trigger_operations(self.ports.queues, clock)

    def queue(self, name: str = "q", **attributes: str) -> str:
        return str(self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])

    def record(self, name: str = "q") -> Any:
        found = self.ports.queues.get(ACCOUNT, name)
        assert found is not None
        return found

    def fetch(self, name: str = "q", count: int = 10) -> list[BackingMessage]:
        return self.ports.messages.receive(self.record(name).backing_url, max_messages=count,
                                           visibility_timeout=30, wait_seconds=0,
                                           attempt_id=None)

    def deliver(self, items: list[BackingMessage], name: str = "q") -> set[str]:
        answer = self.delivery.handle(mapping_records(items, self.record(name).backing_arn))
        return {f["itemIdentifier"] for f in answer["batchItemFailures"]}


@pytest.fixture
def bench(clock: FakeClock) -> Bench:
    return Bench(clock)


def test_the_function_gets_sqss_own_records_opened(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q")
    sent = bench.sqs.send_message(QueueUrl=url, MessageBody='{"order": 1}', MessageAttributes={
        "s": {"DataType": "String", "StringValue": "v"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    items = bench.fetch()
    assert bench.deliver(items) == set()
    (record,) = bench.target.records
    assert record["body"] == '{"order": 1}'
    assert record["messageId"] == items[0].message_id
    assert record["md5OfBody"] == hashlib.md5(b'{"order": 1}').hexdigest()
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert record["messageAttributes"] == {
        "b": {"binaryValue": base64.b64encode(b"\x00\x01").decode(), "stringListValues": [],
              "binaryListValues": [], "dataType": "Binary"},
        "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [],
              "dataType": "String"}}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    assert record["awsRegion"] == "us-east-1"
    assert record["receiptHandle"].startswith("sq2.")  # sealq's own, bound to the queue
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
            "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["attributes"]["SenderId"] == ACCOUNT
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes",
                            "messageAttributes", "md5OfBody", "md5OfMessageAttributes",
                            "eventSource", "eventSourceARN", "awsRegion"]


def test_the_receipt_handle_given_to_the_function_works_on_sealqs_api(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q")
    bench.sqs.send_message(QueueUrl=url, MessageBody="m")
    bench.deliver(bench.fetch())
    (record,) = bench.target.records
    bench.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record["receiptHandle"],
                                        VisibilityTimeout=5)


def test_a_function_error_leaves_the_whole_batch(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q")
    for n in range(3):
        bench.sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    bench.target.answer = lambda event: Invocation(error="Unhandled")
    items = bench.fetch()
    assert bench.deliver(items) == {i.message_id for i in items}


def test_with_report_batch_item_failures_only_the_named_items_stay(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q", report_batch_item_failures=True)
    for n in range(3):
        bench.sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    items = bench.fetch()
    bench.target.answer = lambda event: Invocation(payload={"batchItemFailures": [
        {"itemIdentifier": event["Records"][1]["messageId"]}]})
    assert bench.deliver(items) == {items[1].message_id}


@pytest.mark.parametrize("answer", [
    "not json", {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]},
    {"batchItemFailures": [{"id": "x"}]},
])
def test_a_partial_batch_response_lambda_cannot_read_fails_the_batch(
    bench: Bench, answer: Any,
) -> None:
    url = bench.queue()
    create(bench.ops, "q", report_batch_item_failures=True)
    bench.sqs.send_message(QueueUrl=url, MessageBody="m")
    items = bench.fetch()
    bench.target.answer = lambda event: Invocation(payload=answer)
    assert bench.deliver(items) == {items[0].message_id}


@pytest.mark.parametrize("answer", [None, {}, {"batchItemFailures": []},
                                    {"batchItemFailures": None}])
def test_an_empty_partial_batch_response_is_full_success(bench: Bench, answer: Any) -> None:
    url = bench.queue()
    create(bench.ops, "q", report_batch_item_failures=True)
    bench.sqs.send_message(QueueUrl=url, MessageBody="m")
    bench.target.answer = lambda event: Invocation(payload=answer)
    assert bench.deliver(bench.fetch()) == set()


def test_without_report_batch_item_failures_a_response_is_not_read(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q")
    bench.sqs.send_message(QueueUrl=url, MessageBody="m")
    bench.target.answer = lambda event: Invocation(payload={"batchItemFailures": [
        {"itemIdentifier": event["Records"][0]["messageId"]}]})
    assert bench.deliver(bench.fetch()) == set()


def test_messages_no_filter_matches_are_deleted_unseen(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q", filters=['{"body": {"kind": ["order"]}}'])
    bench.sqs.send_message(QueueUrl=url, MessageBody='{"kind": "order", "n": 1}')
    bench.sqs.send_message(QueueUrl=url, MessageBody='{"kind": "refund", "n": 2}')
    bench.sqs.send_message(QueueUrl=url, MessageBody="not json")
    assert bench.deliver(bench.fetch()) == set()  # the others are deleted: not failures
    assert [r["body"] for r in bench.target.records] == ['{"kind": "order", "n": 1}']


def test_a_tampered_message_is_quarantined_and_never_handed_over(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q")
    bench.sqs.send_message(QueueUrl=url, MessageBody="good")
    bench.sqs.send_message(QueueUrl=url, MessageBody="forged")
    items = bench.fetch()
    forged = BackingMessage(items[1].message_id, items[1].receipt_handle,
                            base64.b64encode(b"\x02" * 80).decode(), items[1].attributes)
    assert bench.deliver([items[0], forged]) == set()
    assert [r["body"] for r in bench.target.records] == ["good"]
    quarantined = bench.ports.quarantine.list(bench.record().quarantine_id)
    assert quarantined == [items[1].message_id]


def refuse_one_key(bench: Bench) -> Delivery:
    """A fresh delivery container whose key service refuses the first data key it is
    asked to decrypt (as KMS refuses a disabled key) and opens the others."""
    keys = bench.memory.keys
    original = keys.decrypt_key
    refused: list[bytes] = []

    def decrypt_key(*, encrypted: bytes, cmk_arn: str, context: Any) -> bytes:
        if not refused:
            refused.append(encrypted)
        if encrypted == refused[0]:
            raise KeyServiceError("KmsDisabled", "The KMS key is disabled.")
        return original(encrypted=encrypted, cmk_arn=cmk_arn, context=context)

    keys.decrypt_key = decrypt_key  # type: ignore[method-assign]
    return delivery_over(table=bench.ports.queues, store=bench.ports.messages,
                         payloads=bench.ports.payloads, quarantine=bench.ports.quarantine,
                         key_service=keys, targets=bench.target, clock=bench.memory.clock)


def test_a_message_whose_key_is_refused_stays_and_never_blocks_the_others(
    bench: Bench, clock: FakeClock,
) -> None:
    url = bench.queue()
    create(bench.ops, "q")
    bench.sqs.send_message(QueueUrl=url, MessageBody="old key")
    clock.advance(301)  # past the reuse period: the next message has a data key of its own
    bench.sqs.send_message(QueueUrl=url, MessageBody="new key")
    items = bench.fetch()
    delivery = refuse_one_key(bench)
    answer = delivery.handle(mapping_records(items, bench.record().backing_arn))
    assert answer == {"batchItemFailures": [{"itemIdentifier": items[0].message_id}]}
    assert [r["body"] for r in bench.target.records] == ["new key"]
    assert bench.ports.quarantine.list(bench.record().quarantine_id) == []


def test_a_disabled_trigger_delivers_nothing_and_loses_nothing(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q", enabled=False)
    bench.sqs.send_message(QueueUrl=url, MessageBody="m")
    items = bench.fetch()
    assert bench.deliver(items) == {items[0].message_id}
    assert bench.target.events == []


def test_a_backing_queue_no_queue_claims_delivers_nothing(bench: Bench) -> None:
    event = mapping_records([BackingMessage("m-1", "h", "body", {})], "arn:aws:sqs:x:1:gone")
    answer = bench.delivery.handle(event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert bench.target.events == []


def test_a_transient_key_service_failure_holds_the_batch(bench: Bench) -> None:
    url = bench.queue()
    create(bench.ops, "q")
    bench.sqs.send_message(QueueUrl=url, MessageBody="m")
    items = bench.fetch()
    keys = bench.memory.keys

    def unavailable(**_: Any) -> bytes:
        raise KeyServiceError("ServiceUnavailable", "try again")

    keys.decrypt_key = unavailable  # type: ignore[method-assign]
    # A fresh delivery container: nothing cached of the key.
    delivery = delivery_over(table=bench.ports.queues, store=bench.ports.messages,
                             payloads=bench.ports.payloads, quarantine=bench.ports.quarantine,
                             key_service=keys, targets=bench.target, clock=bench.memory.clock)
    answer = delivery.handle(mapping_records(items, bench.record().backing_arn))
    assert answer == {"batchItemFailures": [{"itemIdentifier": items[0].message_id}]}
    assert bench.target.events == []


def test_fifo_a_held_message_holds_the_rest_of_its_group_only(bench: Bench,
                                                             clock: FakeClock) -> None:
    url = bench.queue("f.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    create(bench.ops, "f.fifo")
    for group, n in [("a", 1), ("b", 1), ("a", 2), ("b", 2)]:
        bench.sqs.send_message(QueueUrl=url, MessageBody=f"{group}{n}", MessageGroupId=group)
    items = bench.fetch("f.fifo")  # SQS hands a group's messages over in order
    assert [i.attributes["MessageGroupId"] for i in items] == ["a", "b", "a", "b"]
    broken = BackingMessage(items[0].message_id, items[0].receipt_handle, "%%%not base64",
                            items[0].attributes)
    # The head of group a cannot open: quarantined (never blocking), the rest delivered.
    assert bench.deliver([broken, *items[1:]], "f.fifo") == set()
    assert [r["body"] for r in bench.target.records] == ["b1", "a2", "b2"]


def test_fifo_a_message_kept_for_its_key_holds_its_group_in_order(
    bench: Bench, clock: FakeClock,
) -> None:
    url = bench.queue("g.fifo", FifoQueue="true", ContentBasedDeduplication="true")
    create(bench.ops, "g.fifo")
    bench.sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a")
    clock.advance(301)
    bench.sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="b")
    bench.sqs.send_message(QueueUrl=url, MessageBody="a2", MessageGroupId="a")
    items = bench.fetch("g.fifo")
    assert [i.attributes["MessageGroupId"] for i in items] == ["a", "b", "a"]
    delivery = refuse_one_key(bench)
    answer = delivery.handle(mapping_records(items, bench.record("g.fifo").backing_arn))
    held = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    assert held == {items[0].message_id, items[2].message_id}  # a1, and a2 behind it
    assert [r["body"] for r in bench.target.records] == ["b1"]


def test_powertools_batch_processor_works_unchanged_on_the_event(bench: Bench) -> None:
    """An SQS consumer written for Lambda with Powertools' batch processor handles sealq's
    event and its partial batch response as it would SQS's."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    def handle(record: SQSRecord) -> None:
        if record.body == "bad":
            raise ValueError("cannot handle")
        assert record.event_source_arn.endswith(":q")
        attribute = record.message_attributes["k"]
        assert attribute is not None and attribute.string_value == "v"

    processor = BatchProcessor(event_type=EventType.SQS)

    def function(event: dict[str, Any]) -> Invocation:
        return Invocation(payload=process_partial_response(
            event=event, record_handler=handle, processor=processor))

    url = bench.queue()
    create(bench.ops, "q", report_batch_item_failures=True)
    for body in ("good", "bad", "fine"):
        bench.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            "k": {"DataType": "String", "StringValue": "v"}})
    bench.target.answer = function
    failed = bench.deliver(bench.fetch())
    (record,) = [r for r in bench.target.records if r["body"] == "bad"]
    assert failed == {record["messageId"]}
