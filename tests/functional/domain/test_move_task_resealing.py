"""A message move task to another queue on moto: the re-sealed message opens with the
plain Encryption SDK as the new queue's. The move tasks' logic, on memory ports:
tests/unit/domain/test_move_tasks.py."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.clock import FakeClock
from tests.harness import Fleet, sqs_client
from tests.stores import backing_messages, header_of, open_plain, sealed_bytes

ACCOUNT = "000000000000"


def arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def test_a_resealed_message_opens_with_the_plain_encryption_sdk_as_the_new_queue(
    stack: None, clock: FakeClock
) -> None:
    fleet = Fleet(clock)
    events: list[dict[str, Any]] = []
    handler = fleet.handler()
    handler.actions.services.moves_or_fail().dispatch = events.append
    sqs = sqs_client(handler)
    sqs.create_queue(QueueName="dead")
    policy = json.dumps({"deadLetterTargetArn": arn("dead"), "maxReceiveCount": 1})
    src = sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    sqs.create_queue(QueueName="retry")
    sqs.send_message(QueueUrl=src, MessageBody="poison pill")
    sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)
    assert "Messages" not in sqs.receive_message(QueueUrl=src)  # now in the DLQ
    sqs.start_message_move_task(SourceArn=arn("dead"), DestinationArn=arn("retry"))
    handler.actions.services.moves_or_fail().run(events.pop())
    (stored,) = backing_messages()
    sealed = sealed_bytes(stored["Body"])
    context = header_of(sealed).encryption_context
    assert context["sealq:queue-arn"] == arn("retry")
    envelope = json.loads(open_plain(sealed))
    assert envelope["body"] == "poison pill"
    retry = sqs.get_queue_url(QueueName="retry")["QueueUrl"]
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=retry)["Messages"]] == [
        "poison pill"]
