"""Message move tasks (StartMessageMoveTask, CancelMessageMoveTask, ListMessageMoveTasks)
through a real boto3 client, on memory ports: the worker runs when the test says so
(the dispatcher only records events), time is a fake clock, crashes are injected in
plain Python. The one test that needs KMS (the plain ESDK opening a re-sealed message)
runs on moto: tests/functional/domain/test_move_task_resealing.py."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.clock import FakeClock
from chalicelib.crypto.sealing import Binding, bound_to
from chalicelib.domain.movetasks.tasks import STALE_AFTER
from chalicelib.domain.movetasks.worker import MOVE_TASK_EVENT, VISIBILITY
from chalicelib.handler import container
from chalicelib.observability.metrics import Recorder
from tests.harness import sqs_client
from tests.memory import Memory

ACCOUNT = "000000000000"


def arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


class Crash(BaseException):
    """A worker dying mid-way (nothing in sealq catches it)."""


class Moves:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self.naps: list[float] = []
        self.on_nap: Any = None
        self.metrics = Recorder()
        memory = Memory(clock, sleep=self.nap, dispatch=self.events.append,
                        metrics=self.metrics)
        self.ports, self.keys, self.handler = memory.ports, memory.keys, memory.handler
        self.sqs = memory.sqs

    def nap(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.clock.advance(seconds)
        if self.on_nap is not None:
            self.on_nap()

    def work(self) -> None:
        """Run every dispatched worker (and whatever they dispatch) to the end."""
        moves = self.handler.actions.services.moves_or_fail()
        while self.events:
            moves.run(self.events.pop(0))

    def dead_letters(self, bodies: list[str], *, source: str = "work", dlq: str = "dead",
                     fifo: bool = False) -> tuple[str, str]:
        """A source queue redriving into a dead-letter queue that holds ``bodies``."""
        extra = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
        suffix = ".fifo" if fifo else ""
        dlq_url = self.sqs.create_queue(QueueName=dlq + suffix, Attributes=extra)["QueueUrl"]
        policy = json.dumps({"deadLetterTargetArn": arn(dlq + suffix), "maxReceiveCount": 1})
        src = self.sqs.create_queue(QueueName=source + suffix,
                                    Attributes={"RedrivePolicy": policy, **extra})["QueueUrl"]
        for n, body in enumerate(bodies):
            more = {"MessageGroupId": f"g{n % 2}"} if fifo else {}
            self.sqs.send_message(QueueUrl=src, MessageBody=body, **more,
                                  MessageAttributes={"n": {"DataType": "Number",
                                                           "StringValue": str(n)}})
        while self.sqs.receive_message(QueueUrl=src, MaxNumberOfMessages=10,
                                       VisibilityTimeout=0).get("Messages"):
            pass  # receive past maxReceiveCount: the store moves them to the DLQ
        assert self.count(dlq_url) == len(bodies)
        return src, dlq_url

    def counted(self, name: str, **dimensions: str) -> float:
        """A metric's total since the start (what CloudWatch would sum)."""
        return sum(t.value for t in self.metrics.totals()
                   if t.name == name and dict(t.dimensions) == dimensions)

    def count(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url,
                                              AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def drain(self, url: str) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300,
                MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                return got
            got.extend(batch)
            for m in batch:  # a FIFO group shows its next message once this one is gone
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def backing_bodies(self, url: str) -> list[str]:
        name = url.rsplit("/", 1)[1]
        record = self.ports.queues.get(ACCOUNT, name)
        assert record is not None
        store = self.ports.messages
        return [m.body for m in store._queues[record.backing_url].messages]  # type: ignore[attr-defined]


@pytest.fixture
def moves(clock: FakeClock) -> Moves:
    return Moves(clock)


def _error(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(err.value.response["Error"]["Code"]), str(err.value.response["Error"]["Message"])


# -- back to the source queues: moved as stored ---------------------------------------------


def test_a_move_back_to_the_source_queue_moves_the_stored_ciphertext_unchanged(
    moves: Moves,
) -> None:
    src, dlq = moves.dead_letters(["a", "b", "c"])
    stored = sorted(moves.backing_bodies(dlq))
    handle = moves.sqs.start_message_move_task(SourceArn=arn("dead"))["TaskHandle"]
    assert json.loads(base64.b64decode(handle)) == {
        "taskId": json.loads(base64.b64decode(handle))["taskId"], "sourceArn": arn("dead")}
    running = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert running == [{
        "TaskHandle": handle, "Status": "RUNNING", "SourceArn": arn("dead"),
        "ApproximateNumberOfMessagesMoved": 0, "ApproximateNumberOfMessagesToMove": 3,
        "StartedTimestamp": int(moves.clock.now() * 1000),
    }]
    moves.work()
    assert sorted(moves.backing_bodies(src)) == stored  # no re-seal: the same bytes
    assert moves.count(dlq) == 0
    got = moves.drain(src)
    assert sorted(m["Body"] for m in got) == ["a", "b", "c"]
    assert all("DeadLetterQueueSourceArn" not in m["Attributes"] for m in got)
    assert {m["MessageAttributes"]["n"]["StringValue"] for m in got} == {"0", "1", "2"}
    (done,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert done == {
        "Status": "COMPLETED", "SourceArn": arn("dead"), "ApproximateNumberOfMessagesMoved": 3,
        "ApproximateNumberOfMessagesToMove": 3, "StartedTimestamp": running[0]["StartedTimestamp"],
    }


def test_messages_go_back_to_each_of_their_source_queues(moves: Moves) -> None:
    src_a, dlq = moves.dead_letters(["from-a"], source="a")
    policy = json.dumps({"deadLetterTargetArn": arn("dead"), "maxReceiveCount": 1})
    src_b = moves.sqs.create_queue(QueueName="b", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    moves.sqs.send_message(QueueUrl=src_b, MessageBody="from-b")
    moves.sqs.receive_message(QueueUrl=src_b, VisibilityTimeout=0)
    moves.sqs.receive_message(QueueUrl=src_b)
    moves.sqs.start_message_move_task(SourceArn=arn("dead"))
    moves.work()
    assert [m["Body"] for m in moves.drain(src_a)] == ["from-a"]
    assert [m["Body"] for m in moves.drain(src_b)] == ["from-b"]


def test_a_fifo_dead_letter_queue_moves_back_with_its_groups(moves: Moves) -> None:
    src, _ = moves.dead_letters(["a", "b", "c", "d"], fifo=True)
    moves.sqs.start_message_move_task(SourceArn=arn("dead.fifo"))
    moves.work()
    got = moves.drain(src)
    assert sorted((m["Attributes"]["MessageGroupId"], m["Body"]) for m in got) == [
        ("g0", "a"), ("g0", "c"), ("g1", "b"), ("g1", "d")]


def test_a_move_back_fails_when_the_source_queue_is_gone(moves: Moves) -> None:
    src, dlq = moves.dead_letters(["a"])
    moves.sqs.delete_queue(QueueUrl=src)
    moves.sqs.create_queue(QueueName="other", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn("dead"), "maxReceiveCount": 1})})
    moves.sqs.start_message_move_task(SourceArn=arn("dead"))
    moves.work()
    (task,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert (task["Status"], task["FailureReason"]) == (
        "FAILED", "The source queue of a message does not exist any more.")
    assert moves.count(dlq) == 1  # nothing lost


# -- to another queue: opened and sealed again ----------------------------------------------


def test_a_move_to_another_queue_reseals_every_message_for_it(moves: Moves) -> None:
    _, dlq = moves.dead_letters(["a", "b"])
    dest = moves.sqs.create_queue(QueueName="retry")["QueueUrl"]
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"),
                                      MaxNumberOfMessagesPerSecond=50)
    moves.work()
    record = moves.ports.queues.get(ACCOUNT, "retry")
    assert record is not None
    for body in moves.backing_bodies(dest):
        assert bound_to(base64.b64decode(body)) == Binding(arn("retry"), record.queue_id)
    got = moves.drain(dest)
    assert sorted(m["Body"] for m in got) == ["a", "b"]
    assert all("DeadLetterQueueSourceArn" not in m["Attributes"] for m in got)
    assert all(m["Attributes"]["SenderId"] == ACCOUNT for m in got)
    assert moves.count(dlq) == 0
    (task,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert (task["Status"], task["DestinationArn"], task["MaxNumberOfMessagesPerSecond"],
            task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", arn("retry"), 50, 2)


def test_large_messages_are_resealed_into_new_payloads_and_the_old_ones_dropped(
    moves: Moves,
) -> None:
    moves.dead_letters(["x" * 300_000])
    dest = moves.sqs.create_queue(QueueName="retry")["QueueUrl"]
    before = set(moves.ports.payloads.objects)  # type: ignore[attr-defined]
    assert len(before) == 1
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"))
    moves.work()
    after = set(moves.ports.payloads.objects)  # type: ignore[attr-defined]
    assert len(after) == 1 and after != before
    (got,) = moves.drain(dest)
    assert got["Body"] == "x" * 300_000


def test_the_rate_limit_paces_the_move(moves: Moves) -> None:
    moves.dead_letters([f"m{n}" for n in range(6)])
    moves.sqs.create_queue(QueueName="retry")
    start = moves.clock.now()
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"),
                                      MaxNumberOfMessagesPerSecond=2)
    moves.work()
    assert moves.clock.now() - start == pytest.approx(3.0)  # 6 messages at 2 a second
    assert moves.naps == [1.0, 1.0, 1.0]


def test_cancel_stops_a_task_mid_way_and_keeps_what_was_moved(moves: Moves) -> None:
    _, dlq = moves.dead_letters([f"m{n}" for n in range(5)])
    dest = moves.sqs.create_queue(QueueName="retry")["QueueUrl"]
    handle = moves.sqs.start_message_move_task(
        SourceArn=arn("dead"), DestinationArn=arn("retry"),
        MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    seen: dict[str, Any] = {}

    def cancel_after_two() -> None:
        if len(moves.naps) == 2:
            seen["moved"] = moves.sqs.cancel_message_move_task(TaskHandle=handle)[
                "ApproximateNumberOfMessagesMoved"]
            seen["listed"] = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))[
                "Results"][0]

    moves.on_nap = cancel_after_two
    moves.work()
    assert seen["moved"] == 2
    assert seen["listed"]["Status"] == "CANCELLING" and "TaskHandle" not in seen["listed"]
    (task,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("CANCELLED", 2)
    assert len(moves.drain(dest)) == 2 and moves.count(dlq) == 3
    with pytest.raises(ClientError) as err:
        moves.sqs.cancel_message_move_task(TaskHandle=handle)
    assert _error(err)[0] == "InvalidParameterValue"
    moves.sqs.start_message_move_task(SourceArn=arn("dead"))  # the source is free again
    assert moves.counted("MovedMessages") == 2
    assert moves.counted("MoveTasksEnded", Status="CANCELLED") == 1
    assert moves.counted("MoveTasksEnded", Status="COMPLETED") == 0


def test_the_worker_counts_the_messages_it_moved_and_each_task_that_ended(
        moves: Moves) -> None:
    """MovedMessages and MoveTasksEnded (by status) feed the stack's dashboard."""
    moves.dead_letters([f"m{n}" for n in range(13)])
    moves.sqs.start_message_move_task(SourceArn=arn("dead"))
    moves.work()
    assert moves.counted("MovedMessages") == 13
    assert moves.counted("MoveTasksEnded", Status="COMPLETED") == 1
    moves.sqs.delete_queue(QueueUrl=moves.sqs.get_queue_url(QueueName="work")["QueueUrl"])
    moves.dead_letters(["again"], source="other")
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("other"))
    moves.sqs.delete_queue(QueueUrl=moves.sqs.get_queue_url(QueueName="other")["QueueUrl"])
    moves.work()
    assert moves.counted("MoveTasksEnded", Status="FAILED") == 1
    assert moves.counted("MovedMessages") == 13


# -- crashes: nothing lost, nothing doubled ------------------------------------------------


@pytest.mark.parametrize("where", ["delete", "reseal", "send"])
def test_a_worker_crash_mid_way_loses_and_doubles_nothing(
    moves: Moves, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    bodies = [f"m{n}" for n in range(25)]
    _, dlq = moves.dead_letters(bodies)
    dest = moves.sqs.create_queue(QueueName="retry")["QueueUrl"]
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"))
    event = list(moves.events)
    calls = Counter[str]()
    # The second batch dies: after its copies were accepted and recorded ("delete"),
    # half-way through re-sealing it ("reseal"), or while sending it ("send").
    target: Any = {"delete": moves.ports.messages, "send": moves.ports.messages,
                   "reseal": moves.handler.actions.services.sender}[where]
    name = {"delete": "delete_batch", "send": "send_batch", "reseal": "reseal"}[where]
    crash_at = {"delete": 2, "send": 2, "reseal": 15}[where]
    real = getattr(target, name)

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        if calls[name] == crash_at:
            raise Crash()
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, dying)
    with pytest.raises(Crash):
        moves.work()
    monkeypatch.setattr(target, name, real)
    moves.clock.advance(VISIBILITY + 1)  # the dead worker's batch shows again
    moves.events[:] = event  # Lambda's retry of the same event
    moves.work()
    got = Counter(m["Body"] for m in moves.drain(dest))
    assert got == Counter(bodies)  # every message exactly once
    assert moves.count(dlq) == 0
    (task,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 25)


def test_a_fifo_destination_drops_the_copy_a_crash_before_the_record_would_double(
    moves: Moves, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, dlq = moves.dead_letters(["a", "b", "c"], fifo=True)
    dest = moves.sqs.create_queue(QueueName="retry.fifo", Attributes={
        "FifoQueue": "true"})["QueueUrl"]
    moves.sqs.start_message_move_task(SourceArn=arn("dead.fifo"),
                                      DestinationArn=arn("retry.fifo"))
    event = list(moves.events)
    tasks = moves.ports.tasks

    def dying_save(task: Any) -> Any:
        raise Crash()  # the copies were accepted; the record never written

    monkeypatch.setattr(tasks, "save", dying_save)
    with pytest.raises(Crash):
        moves.work()
    monkeypatch.undo()
    moves.clock.advance(VISIBILITY + 1)
    moves.events[:] = event
    moves.work()
    assert sorted(m["Body"] for m in moves.drain(dest)) == ["a", "b", "c"]
    assert moves.count(dlq) == 0


def test_a_worker_short_of_time_hands_over_to_a_fresh_invocation(moves: Moves) -> None:
    moves.dead_letters(["a"])
    moves.sqs.start_message_move_task(SourceArn=arn("dead"))
    (event,) = moves.events
    moves.events.clear()
    moves.handler.actions.services.moves_or_fail().run(event, deadline=0.0)  # long past
    (handover,) = moves.events
    assert handover[MOVE_TASK_EVENT] == {**event[MOVE_TASK_EVENT], "settled_version": 0}
    moves.work()
    (task,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert task["Status"] == "COMPLETED"


# -- what AWS refuses ------------------------------------------------------------------------


def test_start_refuses_what_sqs_refuses_and_starts_nothing(moves: Moves) -> None:
    moves.dead_letters(["a"])
    moves.sqs.create_queue(QueueName="plain")
    moves.sqs.create_queue(QueueName="f.fifo", Attributes={"FifoQueue": "true"})
    cases: list[tuple[dict[str, Any], tuple[str, str]]] = [
        ({"SourceArn": arn("nope")}, ("ResourceNotFoundException",
         "The resource that you specified for the SourceArn parameter doesn't exist.")),
        ({"SourceArn": "nope"}, ("InvalidParameterValue",
         "You must use this format to specify the SourceArn: "
         "arn:<partition>:<service>:<region>:<account-id>:<resource-id>")),
        ({"SourceArn": arn("plain")}, ("InvalidParameterValue",
         "Source queue must be configured as a Dead Letter Queue.")),
        ({"SourceArn": arn("dead"), "DestinationArn": arn("nope")},
         ("ResourceNotFoundException",
          "The resource that you specified for the DestinationArn parameter doesn't exist.")),
        ({"SourceArn": arn("dead"), "DestinationArn": arn("dead")},
         ("InvalidParameterValue",
          "Source queue arn and destination queue arn cannot be the same.")),
        ({"SourceArn": arn("dead"), "DestinationArn": arn("f.fifo")},
         ("InvalidParameterValue",
          "The source queue and destination queue must be of the same queue type.")),
        ({"SourceArn": arn("dead"), "MaxNumberOfMessagesPerSecond": 501},
         ("InvalidParameterValue", "Value 501 for parameter MaxNumberOfMessagesPerSecond is "
          "invalid. Reason: Must be between 1 and 500, if provided.")),
        ({"SourceArn": "arn:aws:sqs:us-east-1:111111111111:dead"},
         ("ResourceNotFoundException",
          "The resource that you specified for the SourceArn parameter doesn't exist.")),
    ]
    for params, expected in cases:
        with pytest.raises(ClientError) as err:
            moves.sqs.start_message_move_task(**params)
        assert _error(err) == expected, params
    assert moves.events == []
    moves.sqs.start_message_move_task(SourceArn=arn("dead"))
    with pytest.raises(ClientError) as err:
        moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("plain"))
    assert _error(err) == ("InvalidParameterValue", "There is already a task running. Only "
                           "one active task is allowed for a source queue arn at a given time.")


def test_cancel_and_list_refuse_unknown_tasks_and_queues(moves: Moves) -> None:
    moves.dead_letters(["a"])
    # AWS leaves an empty list out
    assert "Results" not in moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))
    for handle, expected in [
        ("garbage", ("InvalidParameterValue", "Value for parameter TaskHandle is invalid.")),
        (base64.b64encode(json.dumps({"taskId": "x", "sourceArn": arn("dead")}).encode()
                          ).decode(), ("ResourceNotFoundException", "Task does not exist.")),
        (base64.b64encode(json.dumps({"taskId": "x", "sourceArn": arn("nope")}).encode()
                          ).decode(), ("ResourceNotFoundException", "The resource that you "
                                       "specified for the SourceArn parameter doesn't exist.")),
    ]:
        with pytest.raises(ClientError) as err:
            moves.sqs.cancel_message_move_task(TaskHandle=handle)
        assert _error(err) == expected
    with pytest.raises(ClientError) as err:
        moves.sqs.list_message_move_tasks(SourceArn=arn("nope"))
    assert _error(err)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        moves.sqs.list_message_move_tasks(SourceArn=arn("dead"), MaxResults=11)
    assert _error(err)[0] == "InvalidParameterValue"


def test_list_shows_the_most_recent_tasks_first_one_by_default(moves: Moves) -> None:
    moves.dead_letters(["a"])
    for _ in range(3):
        moves.sqs.start_message_move_task(SourceArn=arn("dead"))
        moves.work()
        moves.clock.advance(1)
    assert len(moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]) == 1
    listed = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"), MaxResults=10)["Results"]
    stamps = [t["StartedTimestamp"] for t in listed]
    assert len(listed) == 3 and stamps == sorted(stamps, reverse=True)
    assert [t["ApproximateNumberOfMessagesMoved"] for t in listed] == [0, 0, 1]


def test_the_handler_function_serves_its_own_move_task_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import app as chalice_app

    served: list[Any] = []
    monkeypatch.setattr(container, "serve_move_task", lambda e, c: served.append((e, c)))
    event = {MOVE_TASK_EVENT: {"source_arn": arn("dead"), "task_id": "t"}}
    chalice_app.app(event, "context")
    assert served == [(event, "context")]


def test_a_task_whose_worker_died_is_dispatched_again_by_the_next_list(
    moves: Moves, monkeypatch: pytest.MonkeyPatch
) -> None:
    moves.dead_letters(["a", "b"])
    moves.sqs.create_queue(QueueName="retry")
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"))
    moves.events.clear()  # the worker never ran (Lambda gave up its retries)
    moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))
    assert moves.events == []  # not stale yet
    moves.clock.advance(STALE_AFTER)
    moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))
    moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))
    assert len(moves.events) == 1  # once, not once per List
    moves.work()
    (task,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("COMPLETED", 2)


def test_a_worker_resumed_at_once_waits_for_the_batch_a_crash_left_hidden(
    moves: Moves, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda may retry before the dead worker's batch shows again: the resumed worker
    must not call the task done and leave those (already moved) messages behind."""
    _, dlq = moves.dead_letters(["a", "b", "c"])
    dest = moves.sqs.create_queue(QueueName="retry")["QueueUrl"]
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"))
    event = list(moves.events)
    store = moves.ports.messages

    def dying_delete(*args: Any, **kwargs: Any) -> Any:
        raise Crash()  # after the copies were accepted and recorded

    monkeypatch.setattr(store, "delete_batch", dying_delete)
    with pytest.raises(Crash):
        moves.work()
    monkeypatch.undo()
    moves.events[:] = event  # retried at once
    moves.work()
    assert moves.naps and moves.naps[-1] == pytest.approx(VISIBILITY + 1)
    assert sorted(m["Body"] for m in moves.drain(dest)) == ["a", "b", "c"]
    assert moves.count(dlq) == 0
    moves.clock.advance(VISIBILITY * 2)
    assert moves.count(dlq) == 0  # nothing comes back later either


def test_a_task_cancelled_after_a_crash_still_removes_what_it_moved(
    moves: Moves, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, dlq = moves.dead_letters([f"m{n}" for n in range(15)])
    dest = moves.sqs.create_queue(QueueName="retry")["QueueUrl"]
    handle = moves.sqs.start_message_move_task(
        SourceArn=arn("dead"), DestinationArn=arn("retry"))["TaskHandle"]
    event = list(moves.events)

    def dying_delete(*args: Any, **kwargs: Any) -> Any:
        raise Crash()

    monkeypatch.setattr(moves.ports.messages, "delete_batch", dying_delete)
    with pytest.raises(Crash):
        moves.work()  # the first 10 were copied and recorded, not deleted
    monkeypatch.undo()
    assert moves.sqs.cancel_message_move_task(TaskHandle=handle)[
        "ApproximateNumberOfMessagesMoved"] == 10
    moves.events[:] = event
    moves.work()
    (task,) = moves.sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert (task["Status"], task["ApproximateNumberOfMessagesMoved"]) == ("CANCELLED", 10)
    moved = {m["Body"] for m in moves.drain(dest)}
    left = {m["Body"] for m in moves.drain(dlq)}
    assert len(moved) == 10 and moved | left == {f"m{n}" for n in range(15)}
    assert not moved & left


def test_a_transient_store_failure_is_retried_and_hides_nothing(
    moves: Moves, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.storage.errors import Transient

    _, dlq = moves.dead_letters(["x" * 300_000, "small"])  # the first body lives in S3
    dest = moves.sqs.create_queue(QueueName="retry")["QueueUrl"]
    payloads = moves.ports.payloads
    real_get = payloads.get
    calls = Counter[str]()

    def flaky_get(bucket: str, key: str) -> bytes:
        calls["get"] += 1
        if calls["get"] == 1:
            raise Transient("s3", "SlowDown")
        return real_get(bucket, key)

    monkeypatch.setattr(payloads, "get", flaky_get)
    moves.sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"))
    moves.work()
    assert sorted(len(m["Body"]) for m in moves.drain(dest)) == [5, 300_000]
    assert moves.count(dlq) == 0
    assert moves.naps == [1.0]  # one pause before the retry, no 60 s wait


def test_a_refused_self_invoke_is_a_retryable_error_and_a_retry_starts_the_task(
    moves: Moves,
) -> None:
    """In Lambda a task's worker is an asynchronous invoke of the handler's own function.
    Lambda throttling that invoke (AWS can, moto cannot: injected) is SQS's retryable
    RequestThrottled, never a 500; the task is left FAILED, so a retry may start anew."""
    from botocore.awsrequest import AWSResponse

    from tests.harness import SESSION

    lam = SESSION.client("lambda", region_name="us-east-1")
    throttled = [True]
    invoked: list[dict[str, Any]] = []

    def invoke(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        if throttled[0]:
            return AWSResponse("https://lambda", 429, {}, None), {
                "Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 429}}
        invoked.append(params)
        return AWSResponse("https://lambda", 202, {}, None), {
            "StatusCode": 202, "ResponseMetadata": {"HTTPStatusCode": 202}}

    lam.meta.events.register("before-call.lambda.Invoke", invoke)
    tasks = moves.handler.actions.services.moves_or_fail()
    tasks.dispatch = container.lambda_dispatch("sealq-api_handler", lam)
    moves.dead_letters(["a", "b"])
    sqs = sqs_client(moves.handler, retries=1)
    with pytest.raises(ClientError) as refused:
        sqs.start_message_move_task(SourceArn=arn("dead"))
    assert refused.value.response["Error"]["Code"] == "RequestThrottled"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    [failed] = sqs.list_message_move_tasks(SourceArn=arn("dead"))["Results"]
    assert failed["Status"] == "FAILED"
    throttled[0] = False
    sqs.start_message_move_task(SourceArn=arn("dead"))
    [call] = invoked
    assert call["headers"]["X-Amz-Invocation-Type"] == "Event"
    assert call["url_path"] == "/2015-03-31/functions/sealq-api_handler/invocations"
    assert MOVE_TASK_EVENT in json.loads(call["body"])
