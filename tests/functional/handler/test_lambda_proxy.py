"""The deployed path: API Gateway REST proxy events through the Lambda entry point.

A real boto3 client (AWS JSON 1.0, and a query-protocol client posting forms) signs
each request for the stage URL ``https://<api>.execute-api.<region>.amazonaws.com/api``;
its HTTP send is turned into the proxy event API Gateway builds (stage ``api``, the
stage-prefixed path in ``requestContext.path``, the body base64-encoded or not) and
answered by ``app.app`` as Lambda calls it; the proxy response goes back to botocore,
which parses it as it would off the network. The stores are moto.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from chalicelib.handler import container
from tests.api_gateway import FRONTS, LAMBDA_PAYLOAD_LIMIT, Gateway, response_bytes
from tests.harness import REGION, SESSION, TEST_ACCOUNT, TEST_CREDENTIALS
from tests.query_client import query_client

REST_STAGE = FRONTS[0]  # https://<api>.execute-api.<region>.amazonaws.com/api
STAGE_URL = REST_STAGE.url
BACKING_PREFIX = "sealq-1a2b3c4d-"


@pytest.fixture
def proxied(stack: None, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """The process's own handler container (as in Lambda) on the stack's backing prefix."""
    monkeypatch.setenv("SEALQ_BACKING_QUEUE_PREFIX", BACKING_PREFIX)
    container.reset()
    return Gateway(REST_STAGE)


def json_client(calls: Gateway, endpoint: str = STAGE_URL) -> Any:
    client = SESSION.client(
        "sqs", region_name=REGION, endpoint_url=endpoint,
        aws_access_key_id=TEST_CREDENTIALS.access_key,
        aws_secret_access_key=TEST_CREDENTIALS.secret_key,
    )
    client.meta.events.register("before-send.sqs.*", calls)
    return client


# The stack's EndpointURL output ends in "/api/"; either form is signed as sent.
@pytest.mark.parametrize("endpoint", [STAGE_URL, STAGE_URL + "/"])
def test_send_receive_delete_through_the_lambda_proxy_as_the_cli_sends_them(
    proxied: Gateway, endpoint: str,
) -> None:
    sqs = json_client(proxied, endpoint)
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    assert url == f"{STAGE_URL}/{TEST_ACCOUNT}/orders"
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    sent = sqs.send_message(QueueUrl=url, MessageBody='{"quote": "\\" and \\\\ and é"}',
                            MessageAttributes={"k": {"DataType": "String",
                                                     "StringValue": "v"}})
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert [m["MessageId"] for m in got] == [sent["MessageId"]]
    assert got[0]["Body"] == '{"quote": "\\" and \\\\ and é"}'
    assert got[0]["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert got[0]["MessageAttributes"]["k"]["StringValue"] == "v"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []

    assert {e["isBase64Encoded"] for e in proxied.events} == {True, False}
    assert {e["headers"]["Content-Type"] for e in proxied.events} == {
        "application/x-amz-json-1.0"}
    assert {e["requestContext"]["path"] for e in proxied.events} == {urlsplit(endpoint).path}
    assert all(r["statusCode"] == 200 for r in proxied.responses)
    # The backing queue carries the stack's prefix, never the tenant's queue name.
    backing = boto3.client("sqs", region_name=REGION).list_queues()["QueueUrls"]
    assert len(backing) == 1 and backing[0].rsplit("/", 1)[1].startswith(BACKING_PREFIX)


def test_errors_come_back_through_the_proxy_as_modeled_sqs_exceptions(
    proxied: Gateway,
) -> None:
    sqs = json_client(proxied)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="missing")
    assert proxied.responses[-1]["statusCode"] == 400


def test_an_unsigned_proxy_request_is_refused(proxied: Gateway) -> None:
    client = SESSION.client(
        "sqs", region_name=REGION, endpoint_url=STAGE_URL,
        aws_access_key_id=TEST_CREDENTIALS.access_key, aws_secret_access_key="not-the-secret",
    )
    client.meta.events.register("before-send.sqs.*", proxied)
    with pytest.raises(client.exceptions.ClientError) as excinfo:
        client.list_queues()
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_public_url_names_the_queues_behind_a_custom_domain(
    proxied: Gateway, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEALQ_PUBLIC_URL", "https://queues.example.com/sealq/")
    container.reset()
    sqs = json_client(proxied)
    url = sqs.create_queue(QueueName="custom")["QueueUrl"]
    assert url == f"https://queues.example.com/sealq/{TEST_ACCOUNT}/custom"


def test_query_protocol_forms_posted_to_the_queue_url_through_the_proxy(
    proxied: Gateway, tmp_path: Path,
) -> None:
    """Older SDKs post forms (application/x-www-form-urlencoded) to the QueueUrl itself."""
    sqs = query_client(STAGE_URL, tmp_path / "models")
    sqs.meta.events.register("before-send.sqs.*", proxied)
    url = sqs.create_queue(QueueName="forms")["QueueUrl"]
    assert url == f"{STAGE_URL}/{TEST_ACCOUNT}/forms"
    form = query_client(url, tmp_path / "models")  # posts to .../api/<account>/forms
    form.meta.events.register("before-send.sqs.*", proxied)
    sent = form.send_message(QueueUrl=url, MessageBody="form & body")
    (got,) = form.receive_message(QueueUrl=url)["Messages"]
    assert (got["MessageId"], got["Body"]) == (sent["MessageId"], "form & body")
    form.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
    assert form.receive_message(QueueUrl=url).get("Messages", []) == []
    posted = [e for e in proxied.events if e["resource"] == "/{account}/{queue}"]
    assert posted and all(
        e["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
        and e["requestContext"]["path"] == f"/api/{TEST_ACCOUNT}/forms" for e in posted)
    assert {e["isBase64Encoded"] for e in posted} == {True, False}


@pytest.mark.parametrize(("protocol", "char", "count"), [
    ("query", "&", 5), ("query", '"', 1), ("query", "\u00e9", 3), ("json", '"', 3),
    ("json", "\u00e9", 3),
])
def test_a_receive_of_one_mib_bodies_answers_under_lambdas_limit_in_either_protocol(
    proxied: Gateway, tmp_path: Path, protocol: str, char: str, count: int,
) -> None:
    """Fewer messages come back rather than a response API Gateway would turn into a 502;
    the rest stay in the queue, visible, and come with the next receives."""
    if protocol == "query":
        sqs = query_client(STAGE_URL, tmp_path / "models")
        sqs.meta.events.register("before-send.sqs.*", proxied)
    else:
        sqs = json_client(proxied)
    url = sqs.create_queue(QueueName=f"big-{protocol}")["QueueUrl"]
    size = 1_048_576 // len(char.encode("utf-8")) - 10
    for n in range(count):
        sqs.send_message(QueueUrl=url, MessageBody=char * size + f"{n:010d}")
    seen: list[str] = []
    answered: list[int] = []
    for _ in range(count + 1):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        # Lambda refuses a response over 6 MB, measured as its runtime writes it.
        assert response_bytes(proxied.responses[-1]) < LAMBDA_PAYLOAD_LIMIT
        answered.append(len(got))
        for message in got:
            assert message["Body"][:size] == char * size
            seen.append(message["Body"][-10:])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(seen) == [f"{n:010d}" for n in range(count)]  # each once, none hidden
    if char == "\u00e9":  # 1 MiB of UTF-8 each, as the runtime sends it: they fit together
        assert answered[0] == count
