"""A long poll never outlasts the invocation: the handler cuts it to the time left.

The budgets themselves: tests/unit/core/test_timeouts.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.clock import FakeClock
from tests.harness import Fleet, signed_handle, sqs_client


def test_the_handler_shortens_a_long_poll_to_the_invocations_remaining_time(
    stack: None, clock: FakeClock
) -> None:
    handler, clients = Fleet(clock).container()
    sqs = sqs_client(handler)
    url = sqs.create_queue(QueueName="q", Attributes={"ReceiveMessageWaitTimeSeconds": "20"})[
        "QueueUrl"
    ]
    waits: list[int] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        waits.append(json.loads(params["body"])["WaitTimeSeconds"])

    clients.get("long_poll").meta.events.register("before-call.sqs.ReceiveMessage", record)
    sqs.send_message(QueueUrl=url, MessageBody="ready")  # so moto answers at once
    request: dict[str, Any] = {"QueueUrl": url, "WaitTimeSeconds": 20, "VisibilityTimeout": 0}
    headers = {"X-Amz-Target": "AmazonSQS.ReceiveMessage",
               "Content-Type": "application/x-amz-json-1.0"}
    body = json.dumps(request).encode()
    for deadline_in in (28.0, 12.0):
        response = signed_handle(handler, headers, body, "http://x", time.monotonic() + deadline_in)
        assert response.status == 200
    assert 8 <= waits[0] <= 9 and waits[1] == 0  # 28 s left minus the reserve, to the second
    # The queue's own default wait is capped the same way.
    del request["WaitTimeSeconds"]
    signed_handle(handler, headers, json.dumps(request).encode(), "http://x",
                  time.monotonic() + 28.0)
    assert 8 <= waits[-1] <= 9
