"""Triggers on the local stack: `make run` delivers to a Python callable, as Lambda would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import REGION, REPO_ROOT, CliRunner, Server

pytestmark = pytest.mark.e2e

WAIT = 60.0


def admin(server: Server, *argv: str) -> dict[str, Any]:
    """``python -m tools.admin ...`` on the local stack's AWS endpoint, as an operator runs it."""
    if server.aws_endpoint is None:
        pytest.skip("the server's AWS endpoint is unknown")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEALQ_"))}
    env.update({"SEALQ_AWS_ENDPOINT": server.aws_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION})
    done = subprocess.run([sys.executable, "-m", "tools.admin", *argv], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def events(log: Path, queue_arn: str, kind: str) -> list[dict[str, Any]]:
    """The records a target of tests/e2e/consumers.py got for ``queue_arn``."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["kind"] == kind:
            found += [r for r in entry["event"]["Records"] if r["eventSourceARN"] == queue_arn]
    return found


def wait_for(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("the trigger did not deliver in time")
        time.sleep(0.2)


def test_messages_sent_with_the_cli_arrive_in_the_callable(
    sealq_server: Server, aws_cli: CliRunner, sqs: Any, queue_name: Callable[[str], str],
) -> None:
    if sealq_server.trigger_log is None:
        pytest.skip("an external server's triggers are not ours to configure")
    name = queue_name("triggered")
    rc, out, err = aws_cli("sqs", "create-queue", "--queue-name", name)
    assert rc == 0, err
    url = json.loads(out)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:000000000000:{name}"
    created = admin(sealq_server, "create-trigger", "000000000000", name,
                    "python:tests.e2e.consumers:record", "--batch-size", "5")
    assert created["EventSourceArn"] == arn
    for n in range(3):
        rc, _, err = aws_cli("sqs", "send-message", "--queue-url", url,
                             "--message-body", f'{{"n": {n}}}')
        assert rc == 0, err
    log = sealq_server.trigger_log
    wait_for(lambda: len(events(log, arn, "record")) >= 3)
    got = events(log, arn, "record")
    assert sorted(r["body"] for r in got) == ['{"n": 0}', '{"n": 1}', '{"n": 2}']
    assert all(r["eventSource"] == "aws:sqs" and r["awsRegion"] == REGION for r in got)
    wait_for(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0")
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []  # delivered: deleted


def test_a_raising_callable_gets_the_message_again_then_the_dead_letter_queue_has_it(
    sealq_server: Server, sqs: Any, queue_name: Callable[[str], str],
) -> None:
    if sealq_server.trigger_log is None:
        pytest.skip("an external server's triggers are not ours to configure")
    dlq = sqs.create_queue(QueueName=queue_name("dead"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    name = queue_name("poison")
    url = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
    })["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:000000000000:{name}"
    admin(sealq_server, "create-trigger", "000000000000", name,
          "python:tests.e2e.consumers:refuse")
    sqs.send_message(QueueUrl=url, MessageBody="never handled")
    log = sealq_server.trigger_log
    wait_for(lambda: len(events(log, arn, "refuse")) >= 2)
    moved: list[dict[str, Any]] = []

    def in_dead_letters() -> bool:
        moved.extend(sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", []))
        return bool(moved)

    wait_for(in_dead_letters)
    assert [m["Body"] for m in moved] == ["never handled"]  # sealed there, opens there
    attempts = events(log, arn, "refuse")
    assert [r["attributes"]["ApproximateReceiveCount"] for r in attempts[:2]] == ["1", "2"]
    admin(sealq_server, "delete-trigger", "000000000000", name)
