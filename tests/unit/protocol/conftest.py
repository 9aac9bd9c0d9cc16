"""Fixtures the protocol's unit tests share."""

from __future__ import annotations

from typing import Any

import pytest

from tests.wire_helpers import make_client


@pytest.fixture
def sqs() -> Any:
    """A real botocore SQS client whose calls ``answer_with`` answers in-process."""
    return make_client()
