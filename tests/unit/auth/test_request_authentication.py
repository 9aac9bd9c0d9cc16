"""Every request is authenticated: real boto3 clients against a handler on memory ports.

Refusals carry SQS's codes and statuses and change nothing; the account comes from
the key; the access keys being unreadable refuses requests rather than serving them.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chalicelib import errors, settings
from chalicelib.auth.sigv4 import derive_signing_key
from chalicelib.clock import SYSTEM_CLOCK, Clock, FakeClock
from chalicelib.handler import container
from chalicelib.storage.errors import Transient
from chalicelib.storage.ports import INACTIVE
from tests.harness import (
    ENDPOINT,
    REGION,
    TEST_ACCOUNT,
    TEST_CREDENTIALS,
    refused,
    signed_handle,
    sqs_client,
)
from tests.memory import Memory, MemoryAccountStore
from tools.admin.accounts import Accounts, NewAccessKey

TARGET = "AmazonSQS.ListQueues"


class Stack:
    def __init__(self, clock: FakeClock, auth_clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        memory = Memory(clock, retries=1, auth_clock=auth_clock)
        self.ports, self.keys, self.handler = memory.ports, memory.keys, memory.handler
        assert isinstance(self.ports.accounts, MemoryAccountStore)
        self.store = self.ports.accounts
        self.accounts = Accounts(self.ports.accounts, self.keys, clock)
        self.sqs = memory.sqs

    def client(self, key: NewAccessKey | Credentials) -> Any:
        if isinstance(key, NewAccessKey):
            key = Credentials(key.access_key_id, key.secret_access_key)
        return sqs_client(self.handler, retries=1, credentials=key)

    def queues(self) -> list[str]:
        return list(self.sqs.list_queues().get("QueueUrls", []))


@pytest.fixture
def stack(clock: FakeClock) -> Stack:
    return Stack(clock)


def raw(stack: Stack, headers: dict[str, str], body: bytes, path: str = "/") -> Any:
    response = stack.handler.handle(headers, body, ENDPOINT, method="POST", path=path)
    return response.status, json.loads(response.body), response.headers


def signed(body: bytes, target: str = TARGET, url: str = ENDPOINT + "/",
           credentials: Credentials = TEST_CREDENTIALS, region: str = REGION,
           service: str = "sqs") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0",
        "Host": url.split("/")[2]})
    SigV4Auth(credentials, service, region).add_auth(request)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}


def test_a_signed_client_is_served_as_its_keys_account(stack: Stack) -> None:
    url = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    assert url == f"{ENDPOINT}/{TEST_ACCOUNT}/orders"


def test_each_key_sees_only_its_own_accounts_queues(stack: Stack) -> None:
    other = stack.accounts.create_account("other")
    theirs = stack.client(stack.accounts.create_access_key(other.account_id))
    mine = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    their_url = theirs.create_queue(QueueName="orders")["QueueUrl"]
    assert their_url == f"{ENDPOINT}/{other.account_id}/orders" != mine
    assert theirs.list_queues()["QueueUrls"] == [their_url]
    # Another account's queue: AccessDenied unless its policy grants it
    # (test_cross_account_authorization.py).
    assert refused(theirs.send_message, QueueUrl=mine, MessageBody="x") == ("AccessDenied", 403)


def test_a_wrong_secret_does_not_match_and_changes_nothing(stack: Stack) -> None:
    wrong = stack.client(Credentials(TEST_CREDENTIALS.access_key, "x" * 40))
    assert refused(wrong.create_queue, QueueName="q") == ("SignatureDoesNotMatch", 403)
    assert stack.queues() == []


def test_an_unknown_key_is_an_invalid_client_token(stack: Stack) -> None:
    unknown = stack.client(Credentials("AKIAUNKNOWNKEY000000", "x" * 40))
    assert refused(unknown.create_queue, QueueName="q") == ("InvalidClientTokenId", 403)
    assert stack.queues() == []


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_an_inactive_or_deleted_key_stops_working_within_the_cache_ttl(
    stack: Stack, clock: FakeClock, change: str
) -> None:
    key = stack.accounts.create_access_key(TEST_ACCOUNT)
    client = stack.client(key)
    client.create_queue(QueueName="before")
    if change == "deactivate":
        stack.accounts.set_access_key_status(key.access_key_id, INACTIVE)
    else:
        stack.accounts.delete_access_key(key.access_key_id)
    clock.advance(settings.get().auth_cache_ttl)
    assert refused(client.create_queue, QueueName="after") == ("InvalidClientTokenId", 403)
    assert [u.rsplit("/", 1)[1] for u in stack.queues()] == ["before"]


def test_an_unsigned_request_is_missing_its_authentication_token(stack: Stack) -> None:
    status, body, headers = raw(stack, {"X-Amz-Target": "AmazonSQS.CreateQueue",
                                        "Content-Type": "application/x-amz-json-1.0"},
                                b'{"QueueName": "q"}')
    assert status == 403
    assert body["__type"].endswith("#MissingAuthenticationTokenException")
    assert headers["x-amzn-query-error"] == "MissingAuthenticationToken;Sender"
    assert stack.queues() == []


def test_a_tampered_body_does_not_match_and_changes_nothing(stack: Stack) -> None:
    headers = signed(b'{"QueueName": "a"}', "AmazonSQS.CreateQueue")
    status, body, _ = raw(stack, headers, b'{"QueueName": "b"}')
    assert status == 403 and body["__type"].endswith("#InvalidSignatureException")
    assert stack.queues() == []


def test_a_tampered_signed_header_does_not_match_and_changes_nothing(stack: Stack) -> None:
    headers = signed(b'{"QueueName": "a"}', "AmazonSQS.GetQueueUrl")
    headers["X-Amz-Target"] = "AmazonSQS.CreateQueue"
    status, _, query_error = raw(stack, headers, b'{"QueueName": "a"}')
    assert (status, query_error["x-amzn-query-error"]) == (403, "SignatureDoesNotMatch;Sender")
    assert stack.queues() == []


@pytest.mark.parametrize(("region", "service"), [("eu-west-1", "sqs"), (REGION, "execute-api")])
def test_a_scope_for_another_region_or_service_is_refused(
    stack: Stack, region: str, service: str
) -> None:
    body = b'{"QueueName": "a"}'
    headers = signed(body, "AmazonSQS.CreateQueue", region=region, service=service)
    status, payload, _ = raw(stack, headers, body)
    assert status == 403 and payload["__type"].endswith("#InvalidSignatureException")
    assert stack.queues() == []


@pytest.mark.parametrize("minutes", [-16, 16])
def test_a_request_dated_outside_the_skew_window_has_expired(
    clock: FakeClock, minutes: int
) -> None:
    now = datetime.datetime.now(datetime.UTC).timestamp()
    skewed = Stack(clock, auth_clock=FakeClock(now + minutes * 60))
    assert refused(skewed.sqs.create_queue, QueueName="q") == ("RequestExpired", 400)
    fine = Stack(clock, auth_clock=FakeClock(now + (minutes // 2) * 60))
    fine.sqs.create_queue(QueueName="q")


def test_a_request_signed_behind_an_api_gateway_stage_verifies_on_the_staged_path(
    stack: Stack,
) -> None:
    body = b"{}"
    headers = signed(body, url="https://abc.execute-api.us-east-1.amazonaws.com/api/")
    status, _, _ = raw(stack, headers, body, path="/api/")
    assert status == 200
    status, payload, _ = raw(stack, headers, body, path="/")
    assert status == 403 and payload["__type"].endswith("#InvalidSignatureException")


def test_query_parameters_are_checked_as_lambda_decodes_them(stack: Stack) -> None:
    url = ENDPOINT + "/?Action=ListQueues&Prefix=a%20b%2Fc&Version=2012-11-05"
    headers = signed(b"{}", url=url)
    params = {"Action": "ListQueues", "Prefix": "a b/c", "Version": "2012-11-05"}
    query = container.canonical_query(params)
    ok = stack.handler.handle(headers, b"{}", ENDPOINT, method="POST", path="/", query=query)
    assert ok.status == 200
    params["Prefix"] = "a b/d"
    forged = stack.handler.handle(headers, b"{}", ENDPOINT, method="POST", path="/",
                                  query=container.canonical_query(params))
    assert forged.status == 403


def test_unreadable_access_keys_refuse_every_request(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(_key_id: str) -> None:
        raise Transient("dynamodb", "ThrottlingException")

    monkeypatch.setattr(stack.store, "get_key", down)
    retryable = errors.service_unavailable()  # what any transient backend fault answers
    assert refused(stack.sqs.create_queue, QueueName="q") == (retryable.query_code,
                                                             retryable.status)
    monkeypatch.undo()
    assert stack.queues() == []


def test_the_warm_path_reads_no_access_key_and_asks_the_key_service_nothing(
    stack: Stack,
) -> None:
    url = stack.sqs.create_queue(QueueName="q")["QueueUrl"]
    stack.sqs.send_message(QueueUrl=url, MessageBody="cold")
    reads, calls = stack.store.reads, stack.keys.calls
    for n in range(20):
        stack.sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    assert (stack.store.reads, stack.keys.calls) == (reads, calls)


def test_no_secret_or_signing_key_reaches_a_response_or_the_log(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = stack.accounts.create_access_key(TEST_ACCOUNT)
    client = stack.client(key)
    wrong = stack.client(Credentials(key.access_key_id, "y" * 40))
    seen: list[bytes] = []
    for sqs in (client, wrong):
        sqs.meta.events.register("after-call.sqs.*",
                                 lambda http_response, **_: seen.append(http_response.content))
    client.create_queue(QueueName="q")
    refused(wrong.list_queues)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
    derived = derive_signing_key(key.secret_access_key, date, REGION)
    text = caplog.text + b"".join(seen).decode("utf-8", "replace")
    for secret in (key.secret_access_key, derived.hex(), TEST_CREDENTIALS.secret_key):
        assert secret not in text


def test_signed_handle_matches_a_client(stack: Stack) -> None:
    response = signed_handle(stack.handler, {"X-Amz-Target": TARGET,
                                             "Content-Type": "application/x-amz-json-1.0"}, b"{}")
    assert response.status == 200
