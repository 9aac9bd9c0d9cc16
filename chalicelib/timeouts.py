"""Every timeout and retry budget of a request's path, in one place, fitted together.

The chain, outermost first: API Gateway gives up after 29 s; the handler Lambda
must answer before that; inside it a SendMessage reads the queue record, asks
the key service (a Lambda Invoke that waits for that function's own timeout),
may put an S3 object and sends to SQS. The key service in turn reads and writes
DynamoDB and calls KMS. ``tests/unit/core/test_timeouts.py`` checks these sums and that
``.chalice/config.json`` uses the Lambda timeouts below, so a change to one
number that breaks the chain fails the build.
"""

from __future__ import annotations

from dataclasses import dataclass

# API Gateway's integration timeout (REST APIs), not configurable upwards.
API_GATEWAY_SECONDS = 29.0
# .chalice/config.json's lambda_timeout of each function.
HANDLER_LAMBDA_SECONDS = 28
KEY_SERVICE_LAMBDA_SECONDS = 11
# The delivery function (triggers): a tenant's function has what is left of it.
DELIVERY_LAMBDA_SECONDS = 28
# Backoff botocore may sleep between attempts is capped at this in our accounting:
# the standard retry mode sleeps rand(0, 1) * 2**attempt, and no budget below
# allows more than one retry.
_BACKOFF = 1.0
# The longest SQS long poll: WaitTimeSeconds is at most 20.
MAX_LONG_POLL = 20


@dataclass(frozen=True)
class CallBudget:
    """A client's connect and read timeouts and its total attempts (first try included)."""

    connect: float
    read: float
    attempts: int

    @property
    def worst(self) -> float:
        """The longest one call can take: every attempt timing out, with backoff between."""
        return self.attempts * (self.connect + self.read) + (self.attempts - 1) * _BACKOFF



# The key service's calls.
KMS = CallBudget(connect=0.5, read=1.5, attempts=2)
KEY_RECORDS = CallBudget(connect=0.5, read=1.0, attempts=1)
# Seconds a generator holds its lease: one GenerateDataKey and the record's completion.
LEASE_SECONDS = KMS.worst + KEY_RECORDS.worst
# Seconds a container waits for another's lease before it gives up (retryable): what
# is left of its own timeout after the last read and a Decrypt of the winner's key.
MAX_LEASE_WAIT = KEY_SERVICE_LAMBDA_SECONDS - 1 - KEY_RECORDS.worst - KMS.worst
# The key service's longest request: read, lease, GenerateDataKey, complete; or
# wait for another's lease, read its record and Decrypt the key.
KEY_SERVICE_WORST = max(
    3 * KEY_RECORDS.worst + KMS.worst, MAX_LEASE_WAIT + KEY_RECORDS.worst + KMS.worst
)

# The handler's calls. Invoke waits out the key service's own timeout, so that a
# function timeout comes back as a FunctionError, and is never retried (the client
# retries the whole request on the retryable error it gets).
KEY_SERVICE_INVOKE = CallBudget(connect=0.5, read=KEY_SERVICE_LAMBDA_SECONDS + 0.5, attempts=1)
QUEUE_TABLE = CallBudget(connect=0.5, read=1.0, attempts=1)
PAYLOADS = CallBudget(connect=0.5, read=1.5, attempts=2)
MESSAGES = CallBudget(connect=0.5, read=1.5, attempts=2)
# ReceiveMessage has its own client: its read must outlast the longest poll.
LONG_POLL = CallBudget(connect=0.5, read=MAX_LONG_POLL + 2.0, attempts=1)
# What a SendMessage may need at most: queue record, key service, S3, SQS.
SEND_WORST = QUEUE_TABLE.worst + KEY_SERVICE_INVOKE.worst + PAYLOADS.worst + MESSAGES.worst
# Time a ReceiveMessage keeps, after its long poll, to open what it got (a key
# from the key service, a body from S3); the poll is shortened to leave it.
RECEIVE_RESERVE = KEY_SERVICE_INVOKE.worst + PAYLOADS.worst
# The delivery function's calls: opening a batch (the key service, S3) and the tenant's
# function, which must answer within what is left of the delivery function's time.
TRIGGER_INVOKE = CallBudget(
    connect=0.5, read=DELIVERY_LAMBDA_SECONDS - 1 - KEY_SERVICE_INVOKE.worst - PAYLOADS.worst,
    attempts=1)


def long_poll_seconds(requested: int, remaining: float | None) -> int:
    """The WaitTimeSeconds to pass on, given the seconds left to this invocation.

    ``remaining`` None means no limit (the local server). The poll never runs into
    the time the handler needs to open messages and answer.
    """
    if remaining is None:
        return requested
    available = int(remaining - QUEUE_TABLE.worst - LONG_POLL.connect - RECEIVE_RESERVE)
    return max(0, min(requested, available))
