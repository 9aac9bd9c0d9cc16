"""The timeouts of a request's path fit inside each other and inside API Gateway's 29 s."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chalicelib import timeouts
from chalicelib.aws import clients as aws
from chalicelib.clock import FakeClock
from chalicelib.keyservice import core as service
from tests.harness import SESSION, Fleet, signed_handle, sqs_client

CONFIG = json.loads((Path(__file__).resolve().parents[1] / ".chalice" / "config.json").read_text())


def lambda_timeouts() -> dict[str, dict[str, int]]:
    """function -> {stage: lambda_timeout} as .chalice/config.json configures them."""
    found: dict[str, dict[str, int]] = {}
    for stage, values in CONFIG["stages"].items():
        for function, conf in values.get("lambda_functions", {}).items():
            if "lambda_timeout" in conf:
                found.setdefault(function, {})[stage] = conf["lambda_timeout"]
    return found


def test_the_deployed_lambda_timeouts_are_the_ones_the_budgets_assume() -> None:
    configured = lambda_timeouts()
    assert set(configured["api_handler"].values()) == {timeouts.HANDLER_LAMBDA_SECONDS}
    assert set(configured["key_service"].values()) == {timeouts.KEY_SERVICE_LAMBDA_SECONDS}


def test_the_handler_answers_before_api_gateway_gives_up() -> None:
    assert timeouts.HANDLER_LAMBDA_SECONDS < timeouts.API_GATEWAY_SECONDS
    # A SendMessage whose every dependency times out still answers in time.
    assert timeouts.SEND_WORST <= timeouts.HANDLER_LAMBDA_SECONDS - 1


def test_the_key_service_finishes_within_its_own_timeout_and_the_handlers_wait() -> None:
    assert timeouts.KEY_SERVICE_WORST <= timeouts.KEY_SERVICE_LAMBDA_SECONDS - 1
    # The handler waits out the function's timeout and never retries an invoke, so
    # a slow key service shows up as a FunctionError, not a second invocation.
    assert timeouts.KEY_SERVICE_INVOKE.read > timeouts.KEY_SERVICE_LAMBDA_SECONDS
    assert timeouts.KEY_SERVICE_INVOKE.attempts == 1


def test_the_lease_outlasts_a_generation_and_the_wait_fits_the_function() -> None:
    assert service.LEASE_SECONDS >= timeouts.KMS.worst + timeouts.KEY_RECORDS.worst
    assert service.MAX_WAIT > 0
    assert service.MAX_WAIT + timeouts.KEY_RECORDS.worst + timeouts.KMS.worst \
        <= timeouts.KEY_SERVICE_LAMBDA_SECONDS - 1


def test_a_hanging_kms_costs_seconds_not_a_hundred() -> None:
    # The reproduction: 1 + 3 retries x 25 s. Now bounded by the budget.
    assert timeouts.KMS.worst <= 6


@pytest.mark.parametrize("role", sorted(aws.ROLES))
def test_every_client_is_built_with_its_roles_budget(role: str) -> None:
    client = aws.Clients(SESSION, "us-east-1", None).get(role)
    _, budget = aws.ROLES[role]
    config = client.meta.config
    assert config.connect_timeout == budget.connect
    assert config.read_timeout == budget.read
    assert config.retries["total_max_attempts"] == budget.attempts


@pytest.mark.parametrize(
    ("requested", "remaining", "expected"),
    [
        (20, None, 20),  # no limit known: as asked
        (20, 28.0, 9),  # in Lambda: the poll leaves time to open and answer
        (5, 28.0, 5),
        (20, 10.0, 0),  # too little left: no long poll at all
    ],
)
def test_long_polls_stop_before_the_invocation_runs_out(
    requested: int, remaining: float | None, expected: int
) -> None:
    assert timeouts.long_poll_seconds(requested, remaining) == expected
    if remaining is not None and expected:
        assert expected + timeouts.RECEIVE_RESERVE < remaining


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
