"""One contract for both implementations of each storage port: AWS adapters on moto, and memory.

The in-memory ports stand in for AWS in fast tests of the domain, so they must
answer as the adapters do; every test here runs against both.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import FakeClock
from chalicelib.handler import container
from chalicelib.storage.errors import Gone, InvalidReceipt, StorageError
from chalicelib.storage.move_tasks import DynamoMoveTaskStore
from chalicelib.storage.ports import Change, MoveTask, Outgoing, QueueRecord
from tests.harness import SESSION
from tests.memory import memory_ports


@pytest.fixture(params=["memory", "aws"])
def ports(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[container.Ports]:
    if request.param == "memory":
        yield memory_ports(clock)
        return
    request.getfixturevalue("stack")
    conf = settings.get()
    yield container.aws_ports(conf, Clients(SESSION, conf.region, conf.aws_endpoint))


def record(name: str = "q", backing: str = "b1", **changes: Any) -> QueueRecord:
    base = QueueRecord("000000000000", name, False, {"VisibilityTimeout": "30"}, backing,
                       "arn:backing", 1, 1, {"team": "a"}, 1)
    return QueueRecord(**{**base.__dict__, **changes})


# -- queue table ------------------------------------------------------------------------


def test_a_name_is_created_once(ports: container.Ports) -> None:
    assert ports.queues.create(record())
    assert not ports.queues.create(record(backing="b2"))
    assert ports.queues.get("000000000000", "q") == record()
    assert ports.queues.get("000000000000", "other") is None


def test_a_change_applies_to_the_version_it_was_planned_on_and_keeps_the_rest(
    ports: container.Ports,
) -> None:
    ports.queues.create(record())
    change = Change(set_attributes={"DelaySeconds": "5"}, remove_tags=["team"],
                    set_tags={"cost": "b"}, modified=7)
    assert ports.queues.update(record(), change)
    stored = ports.queues.get("000000000000", "q")
    assert stored is not None
    assert stored.attributes == {"VisibilityTimeout": "30", "DelaySeconds": "5"}
    assert stored.tags == {"cost": "b"}
    assert (stored.version, stored.modified) == (2, 7)
    # The same stale copy cannot write again: someone (itself) changed the record.
    assert not ports.queues.update(record(), Change(remove_attributes=["VisibilityTimeout"]))
    assert ports.queues.update(stored, Change(remove_attributes=["VisibilityTimeout"]))


def test_a_record_of_another_incarnation_is_neither_changed_nor_deleted(
    ports: container.Ports,
) -> None:
    ports.queues.create(record())
    other = record(backing="b2")
    assert not ports.queues.update(other, Change(set_tags={"x": "y"}))
    assert not ports.queues.delete(other)
    assert ports.queues.delete(record())
    assert ports.queues.get("000000000000", "q") is None
    assert not ports.queues.delete(record())


def test_listing_is_by_name_with_prefix_limit_and_start(ports: container.Ports) -> None:
    for name in ["b", "a2", "a1", "c", "a3"]:
        ports.queues.create(record(name))
    ports.queues.create(QueueRecord(**{**record("a0").__dict__, "account": "111111111111"}))
    found, more = ports.queues.list("000000000000", "a", 2, None)
    assert ([r.name for r in found], more) == (["a1", "a2"], True)
    found, more = ports.queues.list("000000000000", "a", 2, "a2")
    assert ([r.name for r in found], more) == (["a3"], False)
    found, more = ports.queues.list("000000000000", "", 10, None)
    assert [r.name for r in found] == ["a1", "a2", "a3", "b", "c"] and not more


# -- message store ----------------------------------------------------------------------


def test_messages_go_in_flight_come_back_and_are_deleted(ports: container.Ports) -> None:
    store = ports.messages
    url, arn = store.create_queue(False, {"VisibilityTimeout": "30"}, None)
    assert store.get_attributes(url, ["QueueArn"]) == {"QueueArn": arn}
    sent, refused = store.send_batch(url, [Outgoing("1", "one"), Outgoing("2", "two")])
    assert set(sent) == {"1", "2"} and not refused

    got = store.receive(url, max_messages=10, visibility_timeout=None, wait_seconds=0,
                        attempt_id=None)
    assert sorted(m.body for m in got) == ["one", "two"]
    assert got[0].attributes["ApproximateReceiveCount"] == "1"
    assert store.receive(url, max_messages=10, visibility_timeout=None, wait_seconds=0,
                         attempt_id=None) == []
    counts = store.get_attributes(url, ["ApproximateNumberOfMessagesNotVisible"])
    assert counts == {"ApproximateNumberOfMessagesNotVisible": "2"}

    store.change_visibility(url, got[0].receipt_handle, 0)
    again = store.receive(url, max_messages=10, visibility_timeout=None, wait_seconds=0,
                          attempt_id=None)
    assert [m.message_id for m in again] == [got[0].message_id]

    failed = store.delete_batch(url, {"a": again[0].receipt_handle,
                                      "b": got[1].receipt_handle})
    assert failed == {}
    store.purge(url)
    store.delete_queue(url)
    with pytest.raises(Gone):
        store.send_batch(url, [Outgoing("1", "x")])


def test_an_unknown_receipt_handle_is_refused(ports: container.Ports) -> None:
    store = ports.messages
    url, _ = store.create_queue(False, {}, None)
    store.send_batch(url, [Outgoing("1", "one")])
    store.receive(url, max_messages=1, visibility_timeout=30, wait_seconds=0, attempt_id=None)
    with pytest.raises(InvalidReceipt):
        store.change_visibility(url, "not-a-handle", 5)
    failed = store.delete_batch(url, {"x": "not-a-handle"})
    assert set(failed) == {"x"}


def test_a_queue_that_is_gone_is_gone_for_every_call(ports: container.Ports) -> None:
    store = ports.messages
    url, _ = store.create_queue(False, {}, None)
    store.delete_queue(url)
    for call in (
        lambda: store.get_attributes(url, ["QueueArn"]),
        lambda: store.receive(url, max_messages=1, visibility_timeout=None, wait_seconds=0,
                              attempt_id=None),
        lambda: store.purge(url),
        lambda: store.set_attributes(url, {"VisibilityTimeout": "5"}, None),
    ):
        with pytest.raises(Gone):
            call()


# -- payload store ----------------------------------------------------------------------


def test_payloads_are_stored_read_and_removed(ports: container.Ports) -> None:
    bucket, key = ports.payloads.put(b"sealed bytes")
    assert key.startswith("payloads/")
    assert ports.payloads.get(bucket, key) == b"sealed bytes"
    ports.payloads.delete(bucket, key)
    with pytest.raises(StorageError) as raised:
        ports.payloads.get(bucket, key)
    assert isinstance(raised.value, Gone)


# -- move tasks --------------------------------------------------------------------------

SOURCE = "arn:aws:sqs:us-east-1:000000000000:dead"


def task(task_id: str = "t1", started: int = 1, **changes: Any) -> MoveTask:
    return MoveTask(**{**MoveTask(task_id, SOURCE, None, None, started, 5).__dict__, **changes})


def test_a_source_has_one_active_move_task_at_a_time(ports: container.Ports) -> None:
    assert ports.tasks.start(task("t1"))
    assert not ports.tasks.start(task("t2", started=2))
    assert ports.tasks.start(task("t3", source_arn=SOURCE + "2"))  # another source
    assert ports.tasks.get(SOURCE, "t1") == task("t1")
    assert ports.tasks.get(SOURCE, "t2") is None
    finished = ports.tasks.save(task("t1", status="COMPLETED", moved=5))
    assert finished is not None and (finished.status, finished.version) == ("COMPLETED", 1)
    assert ports.tasks.start(task("t2", started=2))
    assert [t.task_id for t in ports.tasks.list(SOURCE, 10)] == ["t2", "t1"]
    assert [t.task_id for t in ports.tasks.list(SOURCE, 1)] == ["t2"]


def test_progress_is_written_only_on_the_version_it_was_read_at(ports: container.Ports) -> None:
    ports.tasks.start(task())
    first = ports.tasks.save(task(moved=2, pending=("m1", "m2")))
    assert first is not None and (first.moved, first.pending, first.version) == (2, ("m1", "m2"), 1)
    assert ports.tasks.save(task(moved=3)) is None  # a stale copy
    stored = ports.tasks.get(SOURCE, "t1")
    assert stored is not None and stored.moved == 2


def test_a_cancel_request_is_seen_by_the_next_progress_write(ports: container.Ports) -> None:
    ports.tasks.start(task())
    cancelling = ports.tasks.request_cancel(SOURCE, "t1")
    assert cancelling is not None and cancelling.cancel_requested
    after = ports.tasks.save(task(moved=1))
    assert after is not None and after.cancel_requested and after.moved == 1
    done = ports.tasks.save(replace(after, status="CANCELLED"))
    assert done is not None and done.status == "CANCELLED"
    again = ports.tasks.request_cancel(SOURCE, "t1")
    assert again is not None and again.status == "CANCELLED"
    assert ports.tasks.request_cancel(SOURCE, "missing") is None


def test_a_failed_task_keeps_its_reason(ports: container.Ports) -> None:
    ports.tasks.start(task(destination_arn=SOURCE + "-dest", rate=7))
    ports.tasks.save(task(destination_arn=SOURCE + "-dest", rate=7, status="FAILED",
                          failure="KmsDisabled"))
    stored = ports.tasks.get(SOURCE, "t1")
    assert stored is not None
    assert (stored.status, stored.failure, stored.destination_arn, stored.rate) == (
        "FAILED", "KmsDisabled", SOURCE + "-dest", 7)


def test_a_start_between_its_two_writes_holds_the_source_for_a_minute(stack: None) -> None:
    """DynamoDB only (memory starts under a lock): a claim whose task is not written yet
    is another start in progress, until it is a minute old (that start died)."""
    conf = settings.get()
    tasks = DynamoMoveTaskStore(Clients(SESSION, conf.region, conf.aws_endpoint).get("queues"),
                                conf.queues_table)
    tasks._claim(SOURCE, "dead-start", 1000, None)  # the first write of a start, alone
    assert not tasks.start(task("t1", started=1030_000))
    assert tasks.start(task("t1", started=1061_000))
    assert [t.task_id for t in tasks.list(SOURCE, 10)] == ["t1"]
