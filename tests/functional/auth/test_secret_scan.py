"""No secret access key, nor any key derived from one, leaves the key service in the clear.

A workload of two accounts — keys made by the operator's command, signed requests
that succeed and that are refused, cross-account grants, a large message in S3 — and
then every store (DynamoDB, S3, the backing queues), every log record and every
response is searched, the way tests/functional/crypto/test_invariants.py searches for
plaintext and data keys, for each secret and each SigV4 key derived from it.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.clock import SYSTEM_CLOCK, FakeClock
from chalicelib.handler.frontend import Frontend
from chalicelib.protocol.json10 import HttpResponse
from chalicelib.storage.accounts import DynamoAccountStore
from tests.harness import REGION, TEST_SECRET, Fleet, auth_secrets, forms, sqs_client
from tests.stores import everything_stored
from tools.admin.accounts import Accounts


def derived_keys(secret: str) -> list[bytes]:
    """Every key SigV4 derives from ``secret`` for today (and either side of midnight)."""
    sign = SigV4Auth(None, "sqs", REGION)._sign
    out = [f"AWS4{secret}".encode()]
    today = datetime.datetime.now(datetime.UTC).date()
    for day in (today - datetime.timedelta(days=1), today, today + datetime.timedelta(days=1)):
        k_date = sign(f"AWS4{secret}".encode(), day.strftime("%Y%m%d"))
        k_region = sign(k_date, REGION)
        k_service = sign(k_region, "sqs")
        out += [k_date, k_region, k_service, sign(k_service, "aws4_request")]
    return out


class Recording:
    """A handler whose every response (status, headers, body) is kept."""

    def __init__(self, handler: Frontend) -> None:
        self.handler = handler
        self.responses: list[bytes] = []
        real = handler.handle

        def handle(*args: Any, **kwargs: Any) -> HttpResponse:
            response = real(*args, **kwargs)
            self.responses.append(repr(response.headers).encode() + response.body.encode())
            return response

        handler.handle = handle  # type: ignore[method-assign]


def test_no_secret_or_derived_key_reaches_a_store_a_log_or_a_response(
    stack: None, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    conf = settings.get()
    store = DynamoAccountStore(boto3.client("dynamodb", region_name=REGION), conf.accounts_table)
    accounts = Accounts(store, auth_secrets(), SYSTEM_CLOCK)
    tenant = accounts.create_access_key(accounts.create_account("tenant-b").account_id)
    b_credentials = Credentials(tenant.access_key_id, tenant.secret_access_key)
    spare = accounts.create_access_key(tenant.account)
    accounts.set_access_key_status(spare.access_key_id, "Inactive")

    recording = Recording(Fleet(clock).handler())
    a = sqs_client(recording.handler, retries=1)
    b = sqs_client(recording.handler, retries=1, credentials=b_credentials)
    url = a.create_queue(QueueName="shared")["QueueUrl"]
    a.add_permission(QueueUrl=url, Label="b", AWSAccountIds=[tenant.account],
                     Actions=["SendMessage", "ReceiveMessage", "DeleteMessage"])
    b.send_message(QueueUrl=url, MessageBody="x" * 300_000)  # the S3 path
    for message in b.receive_message(QueueUrl=url).get("Messages", []):
        b.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    b.send_message(QueueUrl=url, MessageBody="left in the queue")
    b.create_queue(QueueName="own")
    refused = [
        (sqs_client(recording.handler, retries=1,
                    credentials=Credentials(tenant.access_key_id, "x" * 40)), "wrong secret"),
        (sqs_client(recording.handler, retries=1, credentials=Credentials(
            spare.access_key_id, spare.secret_access_key)), "inactive key"),
        (b, "not granted"),
    ]
    for client, label in refused:
        with pytest.raises(ClientError):
            client.purge_queue(QueueUrl=url)
            pytest.fail(label)

    stored = everything_stored()
    logged = caplog.text.encode()
    answered = b"\n".join(recording.responses)
    assert len(recording.responses) >= 10
    for secret in (TEST_SECRET, tenant.secret_access_key, spare.secret_access_key):
        for key in [secret.encode(), *derived_keys(secret)]:
            for form in forms(key):
                assert form not in stored
                assert form not in logged
                assert form not in answered
