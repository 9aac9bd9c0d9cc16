"""Presigned query-API requests through a handler on memory ports: a URL signed with
botocore's ``SigV4QueryAuth`` sends to its queue, until its X-Amz-Expires; it is its
signer's account's, and reaches no other account's queue."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.credentials import Credentials

from chalicelib.clock import FakeClock
from chalicelib.handler import container
from chalicelib.protocol.json10 import HttpResponse
from tests.harness import ENDPOINT, REGION, TEST_CREDENTIALS, sqs_client
from tests.memory import Memory
from tests.presigned import presign, send_message_params
from tests.query_client import NAMESPACE
from tools.admin.accounts import Accounts

NS = {"q": NAMESPACE}


class Stack:
    def __init__(self, clock: FakeClock) -> None:
        memory = Memory(clock, retries=1)
        self.handler = memory.handler
        self.accounts = Accounts(memory.ports.accounts, memory.keys, clock)
        self.sqs = memory.sqs

    def get(self, url: str, query: str | None = None) -> HttpResponse:
        """A plain GET of ``url``, as curl or a device sends it: no header but Host."""
        parts = urlsplit(url)
        return self.handler.handle({"Host": parts.netloc}, None, ENDPOINT, method="GET",
                                   path=parts.path, query=parts.query if query is None else query)

    def bodies(self, url: str) -> list[str]:
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        return [m["Body"] for m in got.get("Messages", [])]


@pytest.fixture
def stack(clock: FakeClock) -> Stack:
    return Stack(clock)


def _xml(response: HttpResponse) -> ET.Element:
    assert response.headers["Content-Type"] == "text/xml"
    return ET.fromstring(response.body)


def _error(response: HttpResponse) -> tuple[int, str | None]:
    return response.status, _xml(response).findtext("q:Error/q:Code", namespaces=NS)


def presigned_send(queue_url: str, body: str, credentials: Credentials = TEST_CREDENTIALS,
                   **kwargs: Any) -> str:
    return presign(queue_url, send_message_params(body), credentials, region=REGION, **kwargs)


def test_a_presigned_send_message_url_sends_to_its_queue(stack: Stack) -> None:
    url = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    response = stack.get(presigned_send(url, "from a device", expires=5))
    assert response.status == 200, response.body
    root = _xml(response)
    assert root.tag == f"{{{NAMESPACE}}}SendMessageResponse"
    assert root.findtext("q:SendMessageResult/q:MessageId", namespaces=NS)
    assert stack.bodies(url) == ["from a device"]


def test_the_same_url_as_lambda_decodes_its_query_is_served(stack: Stack) -> None:
    url = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    signed = presigned_send(url, "a b/c+d&é")
    decoded = dict(parse_qsl(urlsplit(signed).query, keep_blank_values=True))
    response = stack.get(signed, query=container.canonical_query(decoded))
    assert response.status == 200, response.body
    assert stack.bodies(url) == ["a b/c+d&é"]


def test_a_presigned_url_past_its_x_amz_expires_is_refused_and_sends_nothing(
    stack: Stack,
) -> None:
    url = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=10)
    response = stack.get(presigned_send(url, "too late", expires=5, signed_at=past))
    assert _error(response) == (403, "SignatureDoesNotMatch")
    assert "Signature expired" in (_xml(response).findtext("q:Error/q:Message", namespaces=NS)
                                   or "")
    assert stack.bodies(url) == []


def test_a_tampered_presigned_url_is_refused_and_sends_nothing(stack: Stack) -> None:
    url = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    signed = presigned_send(url, "original")
    response = stack.get(signed.replace("original", "replaced"))
    assert _error(response) == (403, "SignatureDoesNotMatch")
    assert stack.bodies(url) == []


def test_a_presigned_url_of_one_account_cannot_reach_another_accounts_queue(
    stack: Stack,
) -> None:
    url = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    other = stack.accounts.create_account("other")
    key = stack.accounts.create_access_key(other.account_id)
    theirs = Credentials(key.access_key_id, key.secret_access_key)
    response = stack.get(presigned_send(url, "intruder", theirs))
    assert _error(response) == (403, "AccessDenied")
    assert stack.bodies(url) == []
    # Their own queue, the same way, works.
    own = sqs_client(stack.handler, credentials=theirs).create_queue(QueueName="mine")
    assert stack.get(presigned_send(own["QueueUrl"], "mine", theirs)).status == 200


def test_a_presigned_request_that_also_carries_an_authorization_header_is_refused(
    stack: Stack,
) -> None:
    url = stack.sqs.create_queue(QueueName="orders")["QueueUrl"]
    parts = urlsplit(presigned_send(url, "twice"))
    headers = {"Host": parts.netloc, "Authorization": "AWS4-HMAC-SHA256 Credential=x"}
    response = stack.handler.handle(headers, None, ENDPOINT, method="GET", path=parts.path,
                                    query=parts.query)
    assert _error(response) == (403, "SignatureDoesNotMatch")
    assert stack.bodies(url) == []
