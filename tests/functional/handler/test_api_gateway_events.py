"""What API Gateway really delivers, through the Lambda entry point (``app.app``).

Each front (tests/api_gateway.py: the REST API on its stage URL, EDGE, lowercase header
names, custom domains with no base path and with ``/sqs`` and ``/v1/sqs``; the HTTP API's
payload format 1.0) gets a real boto3 client signing for its URL, events as AWS builds
them, and botocore parsing the proxy responses. The stores are moto.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from chalicelib.handler import container
from tests.api_gateway import (
    CUSTOM_DOMAIN,
    EXECUTE_API,
    FRONTS,
    LAMBDA_PAYLOAD_LIMIT,
    Front,
    Gateway,
    event_bytes,
    proxy_event,
    response_bytes,
)
from tests.harness import REGION, SESSION, TEST_ACCOUNT, TEST_CREDENTIALS
from tests.query_client import query_client

BACKING_PREFIX = "sealq-1a2b3c4d-"
BY_NAME = {front.name: front for front in FRONTS}


@pytest.fixture
def deployed(stack: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's own handler container, configured as the stack configures it."""
    monkeypatch.setenv("SEALQ_BACKING_QUEUE_PREFIX", BACKING_PREFIX)
    container.reset()


def json_client(gateway: Gateway, endpoint: str | None = None) -> Any:
    client = SESSION.client(
        "sqs", region_name=REGION, endpoint_url=endpoint or gateway.front.url,
        aws_access_key_id=TEST_CREDENTIALS.access_key,
        aws_secret_access_key=TEST_CREDENTIALS.secret_key,
    )
    client.meta.events.register("before-send.sqs.*", gateway)
    return client


def form_client(gateway: Gateway, endpoint: str, models: Path) -> Any:
    client = query_client(endpoint, models)
    client.meta.events.register("before-send.sqs.*", gateway)
    return client


class _SignsTheTraceHeader(SigV4Auth):
    """A signer that, unlike every AWS SDK, signs ``X-Amzn-Trace-Id`` too."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        headers["x-amzn-trace-id"] = request.headers["X-Amzn-Trace-Id"]
        return headers


def signed(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
           *, signer: type[SigV4Auth] = SigV4Auth) -> AWSRequest:
    """A request signed with the test key for SQS, in the SigV4 header form."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    signer(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)
    return request


@pytest.mark.parametrize("front", FRONTS, ids=lambda f: f.name)
def test_a_client_of_the_front_sends_receives_and_deletes_with_the_urls_it_is_handed(
    deployed: None, front: Front,
) -> None:
    gateway = Gateway(front)
    sqs = json_client(gateway)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    assert url == f"{front.url}/{TEST_ACCOUNT}/orders"
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    assert sqs.list_queues()["QueueUrls"] == [url]
    sent = sqs.send_message(QueueUrl=url, MessageBody="through " + front.name)
    (got,) = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert (got["MessageId"], got["Body"]) == (sent["MessageId"], "through " + front.name)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert {r["statusCode"] for r in gateway.responses} == {200}
    assert {e["isBase64Encoded"] for e in gateway.events} == {True, False}
    event = gateway.events[0]
    assert event["requestContext"]["domainName"] == front.host
    if front.edge:
        assert {"Via", "X-Amz-Cf-Id", "CloudFront-Viewer-Country"} <= set(event["headers"])
    if front.api == "HTTP" or front.lowercase:
        assert all(name == name.lower() for name in event["headers"])


@pytest.mark.parametrize("front", FRONTS, ids=lambda f: f.name)
def test_older_sdks_post_forms_to_the_queue_url_the_front_hands_out(
    deployed: None, front: Front, tmp_path: Path,
) -> None:
    gateway = Gateway(front)
    sqs = form_client(gateway, front.url, tmp_path / "models")
    url = sqs.create_queue(QueueName="forms")["QueueUrl"]
    assert url == f"{front.url}/{TEST_ACCOUNT}/forms"
    form = form_client(gateway, url, tmp_path / "models")  # posts to the queue's own URL
    sent = form.send_message(QueueUrl=url, MessageBody="form & body")
    (got,) = form.receive_message(QueueUrl=url)["Messages"]
    assert (got["MessageId"], got["Body"]) == (sent["MessageId"], "form & body")
    form.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    posted = [e for e in gateway.events if e["resource"] == "/{account}/{queue}"]
    assert posted and all(r["statusCode"] == 200 for r in gateway.responses)


QUERY_BODY = "a b+c&d=e/é~*'!()%20 😀"


@pytest.mark.parametrize("front", FRONTS, ids=lambda f: f.name)
def test_a_signed_query_protocol_get_is_served(deployed: None, front: Front) -> None:
    """``GET <queue URL>?Action=SendMessage&...`` signed in the header form: API Gateway
    decodes the query into (multi-value) parameters; the signature holds over them."""
    gateway = Gateway(front)
    url = json_client(gateway).create_queue(QueueName="gets")["QueueUrl"]
    query = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in (
        ("Action", "SendMessage"), ("MessageBody", QUERY_BODY), ("Version", "2012-11-05")))
    answer = gateway.answer(url, proxy_event(front, signed("GET", f"{url}?{query}"),
                                             base64_body=False))
    assert answer.status_code == 200, answer.content
    assert b"<SendMessageResponse" in answer.content
    query = "Action=ReceiveMessage&Version=2012-11-05&VisibilityTimeout=0"
    answer = gateway.answer(url, proxy_event(front, signed("GET", f"{url}?{query}"),
                                             base64_body=False))
    assert answer.status_code == 200, answer.content
    assert "<Body>a b+c&amp;d=e/é~*'!()%20 😀</Body>" in answer.content.decode()


@pytest.mark.parametrize("front", [BY_NAME["rest-stage-url"], BY_NAME["http-stage-url"]],
                         ids=lambda f: f.name)
def test_a_repeated_query_parameter_is_verified_with_every_value(
    deployed: None, front: Front,
) -> None:
    """``queryStringParameters`` keeps only the last value; the client signed all."""
    gateway = Gateway(front)
    url = json_client(gateway).create_queue(QueueName="repeats")["QueueUrl"]
    query = ("Action=GetQueueAttributes&AttributeName.1=All&Version=2012-11-05"
             "&Extra=first&Extra=second")
    event = proxy_event(front, signed("GET", f"{url}?{query}"), base64_body=False)
    assert event["queryStringParameters"]["Extra"] == "second"
    assert event["multiValueQueryStringParameters"]["Extra"] == ["first", "second"]
    answer = gateway.answer(url, event)
    assert answer.status_code == 200, answer.content


@pytest.mark.parametrize("front", [BY_NAME["rest-stage-url"], BY_NAME["http-stage-url"]],
                         ids=lambda f: f.name)
def test_a_header_sent_twice_is_verified_with_both_values(
    deployed: None, front: Front,
) -> None:
    """HTTP lets a client send a header twice, and SigV4 signs both values, joined with a
    comma. ``headers`` keeps only the last one; ``multiValueHeaders`` has both."""
    gateway = Gateway(front)
    body = b'{"QueueName": "twice"}'
    request = AWSRequest(method="POST", url=front.url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.CreateQueue"})
    request.headers["X-Sealq-Test"] = "one"
    request.headers["X-Sealq-Test"] = "two"  # appended: the header goes twice
    SigV4Auth(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)
    assert "x-sealq-test" in request.headers["Authorization"]

    event = proxy_event(front, request, base64_body=False)
    answer = gateway.answer(request.url, event)

    name = "x-sealq-test" if front.api == "HTTP" else "X-Sealq-Test"
    assert (event["headers"][name], event["multiValueHeaders"][name]) == ("two", ["one", "two"])
    assert answer.status_code == 200, answer.content
    assert json.loads(answer.content)["QueueUrl"] == f"{front.url}/{TEST_ACCOUNT}/twice"


@pytest.mark.parametrize("front", [BY_NAME["rest-stage-url"], BY_NAME["rest-edge"],
                                   BY_NAME["http-stage-url"]], ids=lambda f: f.name)
def test_api_gateway_rewriting_the_trace_header_leaves_the_signature_whole(
    deployed: None, front: Front,
) -> None:
    """A client tracing with X-Ray sends ``X-Amzn-Trace-Id``; API Gateway passes on its
    own (its segment as the parent). SDKs never sign that header, so the request holds."""
    gateway = Gateway(front)
    sqs = json_client(gateway)
    sent = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

    def trace(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = sent

    sqs.meta.events.register("before-sign.sqs.*", trace)
    sqs.create_queue(QueueName="traced")
    name = "x-amzn-trace-id" if front.api == "HTTP" else "X-Amzn-Trace-Id"
    passed = gateway.events[-1]["headers"][name]
    assert passed != sent and passed.startswith("Root=1-5759e988-bd862e3fe1be46a994272793;")
    assert gateway.responses[-1]["statusCode"] == 200


def test_a_client_that_signs_the_trace_header_is_refused_as_a_bad_signature(
    deployed: None,
) -> None:
    """Not sealq's to mend (the value the client signed never reaches the function), but
    a clean 403 (SignatureDoesNotMatch), never a 5xx."""
    front = BY_NAME["rest-stage-url"]
    gateway = Gateway(front)
    body = b'{"QueueName": "signed-trace"}'
    request = signed("POST", front.url + "/", body, {
        "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.CreateQueue",
        "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793"},
        signer=_SignsTheTraceHeader)
    assert "x-amzn-trace-id" in request.headers["Authorization"]
    answer = gateway.answer(request.url, proxy_event(front, request, base64_body=False))
    assert answer.status_code == 403
    assert json.loads(answer.content)["__type"].endswith("#InvalidSignatureException")
    assert answer.headers["x-amzn-query-error"] == "SignatureDoesNotMatch;Sender"


@pytest.mark.parametrize("front", FRONTS, ids=lambda f: f.name)
def test_an_unsupported_content_type_gets_the_sqs_error_the_local_server_gives(
    deployed: None, front: Front,
) -> None:
    """Chalice's own ``415 {"Code": "UnsupportedMediaType"}`` is no SQS error: botocore
    could not parse it. The function answers as ``make run`` answers."""
    from app import CONTENT_TYPES
    from tools.local.httpserver import unsupported_media_type

    gateway = Gateway(front)
    body = b'{"QueueName": "plain"}'
    request = signed("POST", front.url + "/", body, {
        "Content-Type": "text/plain", "X-Amz-Target": "AmazonSQS.CreateQueue"})
    answer = gateway.answer(request.url, proxy_event(front, request, base64_body=False))

    local = unsupported_media_type("text/plain", CONTENT_TYPES)
    assert answer.status_code == local.status == 415
    error = json.loads(answer.content)
    assert error == {"__type": local.type, "message": local.message}
    assert answer.headers["x-amzn-query-error"] == "InvalidAction;Sender"
    assert answer.headers["x-amzn-RequestId"]
    with pytest.raises(ClientError) as raised:  # and botocore reads it as an SQS error
        sqs = json_client(gateway)

        def plain(request: Any, **_: Any) -> None:
            request.headers.replace_header("Content-Type", "text/plain")

        sqs.meta.events.register("before-sign.sqs.*", plain)
        sqs.create_queue(QueueName="plain")
    assert raised.value.response["Error"]["Code"] == "InvalidAction"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 415


# -- Lambda's 6 MB, for what a client may legitimately send and receive -----------------

# SQS's largest body, 1 MiB, of the character each protocol encodes dearest: the query
# protocol percent-encodes every byte of a non-ASCII character (3 bytes a byte), JSON
# escapes a quote (2 bytes), and the event's JSON escapes that escape again.
MIB = 1_048_576


@pytest.mark.parametrize("front", [BY_NAME["rest-stage-url"], BY_NAME["http-stage-url"],
                                   BY_NAME["rest-custom-domain-v1-sqs"]], ids=lambda f: f.name)
@pytest.mark.parametrize("base64_body", [False, True], ids=["text", "base64"])
def test_the_largest_query_protocol_requests_fit_lambdas_payload_limit(
    deployed: None, front: Front, base64_body: bool, tmp_path: Path,
) -> None:
    gateway = Gateway(front, base64_body=base64_body)
    sqs = form_client(gateway, front.url, tmp_path / "models")
    url = sqs.create_queue(QueueName="big")["QueueUrl"]
    form = form_client(gateway, url, tmp_path / "models")
    body = "é" * (MIB // 2)  # 1 MiB of UTF-8, 3 MiB as a form
    form.send_message(QueueUrl=url, MessageBody=body)
    entries = [{"Id": str(n), "MessageBody": "é" * (MIB // 20 - 8)} for n in range(10)]
    assert not form.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")
    sizes = [event_bytes(e) for e in gateway.events]
    assert max(sizes) < LAMBDA_PAYLOAD_LIMIT
    assert max(sizes) > 3 * MIB  # it was the big one that was measured
    seen = []
    for _ in range(12):
        got = form.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert response_bytes(gateway.responses[-1]) < LAMBDA_PAYLOAD_LIMIT
        for message in got:
            seen.append(len(message["Body"]))
            form.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(seen) == 11:
            break
    assert sorted(seen) == sorted([MIB // 2] + [MIB // 20 - 8] * 10)


@pytest.mark.parametrize("front", [BY_NAME["rest-stage-url"], BY_NAME["http-stage-url"]],
                         ids=lambda f: f.name)
def test_the_largest_json_request_fits_lambdas_payload_limit(
    deployed: None, front: Front,
) -> None:
    gateway = Gateway(front, base64_body=False)
    sqs = json_client(gateway)
    url = sqs.create_queue(QueueName="quotes")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='"' * (MIB - 1))
    assert 4 * MIB - 1024 < event_bytes(gateway.events[-1]) < LAMBDA_PAYLOAD_LIMIT
    (got,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert got["Body"] == '"' * (MIB - 1)


def test_every_front_of_the_suite_is_one_an_operator_can_deploy() -> None:
    """The fronts cover both API types, both endpoint types and every base-path shape."""
    assert {f.api for f in FRONTS} == {"REST", "HTTP"}
    assert {f.base_path for f in FRONTS if f.host == CUSTOM_DOMAIN} == {"", "/sqs", "/v1/sqs"}
    assert any(f.edge for f in FRONTS) and any(f.host == EXECUTE_API for f in FRONTS)
