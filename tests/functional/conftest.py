"""Fixtures the functional tests share: a fleet of containers on the test's moto stack,
and the boto3 SQS client of one of its handler containers."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.clock import FakeClock
from tests.harness import Fleet


@pytest.fixture
def fleet(stack: None, clock: FakeClock) -> Fleet:
    """One key-service container on the stack; each ``fleet.handler()`` a new, cold handler."""
    return Fleet(clock)


@pytest.fixture
def sqs(fleet: Fleet) -> Any:
    """A boto3 SQS client served by a new handler container of ``fleet``."""
    return fleet.sqs()
