"""The timeouts of a request's path fit inside each other and inside API Gateway's 29 s.

The handler cutting a long poll short, on moto: tests/functional/handler/test_long_polls.py.
"""

from __future__ import annotations

import json

import pytest

from chalicelib import timeouts
from chalicelib.aws import clients as aws
from chalicelib.keyservice import core as service
from tests.harness import ROOT, SESSION

CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text())


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
    assert set(configured["delivery"].values()) == {timeouts.DELIVERY_LAMBDA_SECONDS}


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


def test_a_tenants_function_has_what_is_left_of_the_delivery_functions_time() -> None:
    """Opening a batch (the key service, S3) and the tenant's function fit the delivery
    function's own timeout, so a slow function is a failed batch, never a lost one."""
    assert (timeouts.KEY_SERVICE_INVOKE.worst + timeouts.PAYLOADS.worst
            + timeouts.TRIGGER_INVOKE.worst) <= timeouts.DELIVERY_LAMBDA_SECONDS - 0.5
    assert timeouts.TRIGGER_INVOKE.attempts == 1  # the mapping retries, not the client
