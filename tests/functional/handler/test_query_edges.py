"""The query endpoint's edges as AWS was recorded answering them: a GET without an
Action, a client that accepts JSON, an empty receive, actions a queue URL does not
serve, the query protocol's own NonExistentQueue text."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from chalicelib.clock import FakeClock
from chalicelib.handler.frontend import Frontend
from chalicelib.protocol.json10 import HttpResponse
from tests.harness import ENDPOINT, REGION, TEST_ACCOUNT, TEST_CREDENTIALS, Fleet, sqs_client
from tests.query_client import NAMESPACE

NS = {"q": NAMESPACE}
QUEUE_PATH = f"/{TEST_ACCOUNT}/orders"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def handler(stack: None, clock: FakeClock) -> Frontend:
    return Fleet(clock).handler()


@pytest.fixture
def sqs(handler: Frontend) -> Any:
    return sqs_client(handler)


def send(handler: Frontend, method: str, target: str, body: bytes | None = None,
         headers: dict[str, str] | None = None, signed: bool = True) -> HttpResponse:
    """One raw request (signed with the test key unless ``signed`` is False)."""
    url = ENDPOINT + target
    parts = urlsplit(url)
    headers = dict(headers or {})
    headers["Host"] = parts.netloc
    if signed:
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)
        headers = {k: (v.decode() if isinstance(v, bytes) else v)
                   for k, v in request.headers.items()}
    return handler.handle(headers, body, ENDPOINT, method=method, path=parts.path or "/",
                          query=parts.query)


def xml_error(response: HttpResponse) -> tuple[int, str | None, str | None]:
    assert response.headers["Content-Type"] == "text/xml"
    root = ET.fromstring(response.body)
    return (response.status, root.findtext("q:Error/q:Code", namespaces=NS),
            root.findtext("q:Error/q:Message", namespaces=NS))


# -- GET without an Action ----------------------------------------------------------------


@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("target", [QUEUE_PATH, "/", QUEUE_PATH + "?QueueName=x"])
def test_a_get_without_an_action_is_404_unknown_operation_in_xml(
    handler: Frontend, sqs: Any, target: str, signed: bool
) -> None:
    sqs.create_queue(QueueName="orders")
    response = send(handler, "GET", target, signed=signed)
    assert response.status == 404
    assert response.headers["Content-Type"] == "text/xml"
    assert ET.fromstring(response.body).tag == "UnknownOperationException"
    assert response.body.strip() == "<UnknownOperationException/>"


# -- Accept: application/json ----------------------------------------------------------------


def test_a_query_request_that_accepts_json_is_answered_in_json(
    handler: Frontend, sqs: Any
) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.create_queue(QueueName="other")
    response = send(handler, "GET", "/?Action=ListQueues&Version=2012-11-05",
                    headers={"Accept": "application/json"})
    assert response.status == 200, response.body
    assert response.headers["Content-Type"] == "application/json"
    document = json.loads(response.body)
    result = document["ListQueuesResponse"]["ListQueuesResult"]
    assert result["QueueUrls"] == [url, f"{ENDPOINT}/{TEST_ACCOUNT}/other"]
    request_id = document["ListQueuesResponse"]["ResponseMetadata"]["RequestId"]
    assert request_id == response.headers["x-amzn-RequestId"]

    sent = json.loads(send(handler, "POST", QUEUE_PATH,
                           b"Action=SendMessage&Version=2012-11-05&MessageBody=hi",
                           {"Content-Type": FORM, "Accept": "application/json"}).body)
    assert set(sent["SendMessageResponse"]["SendMessageResult"]) == {
        "MD5OfMessageBody", "MessageId"}
    got = json.loads(send(handler, "GET", QUEUE_PATH + "?Action=ReceiveMessage",
                          headers={"Accept": "application/json, text/xml;q=0.5"}).body)
    assert [m["Body"] for m in got["ReceiveMessageResponse"]["ReceiveMessageResult"][
        "Messages"]] == ["hi"]
    deleted = json.loads(send(handler, "POST", QUEUE_PATH, b"Action=DeleteQueue",
                              {"Content-Type": FORM, "Accept": "application/json"}).body)
    assert list(deleted["DeleteQueueResponse"]) == ["ResponseMetadata"]


def test_a_query_error_for_a_client_that_accepts_json_is_json_too(handler: Frontend) -> None:
    response = send(handler, "GET", "/?Action=GetQueueUrl&QueueName=nope",
                    headers={"Accept": "application/json"})
    assert (response.status, response.headers["Content-Type"]) == (400, "application/json")
    error = json.loads(response.body)["ErrorResponse"]["Error"]
    assert error == {"Type": "Sender", "Code": "AWS.SimpleQueueService.NonExistentQueue",
                     "Message": "The specified queue does not exist for this wsdl version."}
    assert response.headers["x-amzn-query-error"] == (
        "AWS.SimpleQueueService.NonExistentQueue;Sender")


def test_without_accept_json_a_query_request_is_answered_in_xml(handler: Frontend) -> None:
    for accept in (None, "text/xml", "*/*"):
        headers = {"Accept": accept} if accept else {}
        response = send(handler, "GET", "/?Action=ListQueues", headers=headers)
        assert response.headers["Content-Type"] == "text/xml", accept


# -- the empty receive -------------------------------------------------------------------


def test_an_empty_receive_is_an_empty_result_element(handler: Frontend, sqs: Any) -> None:
    sqs.create_queue(QueueName="orders")
    response = send(handler, "GET", QUEUE_PATH + "?Action=ReceiveMessage&Version=2012-11-05")
    assert response.status == 200
    assert "<ReceiveMessageResult/>" in response.body
    assert "<ReceiveMessageResult></ReceiveMessageResult>" not in response.body


# -- actions a queue URL does not serve -----------------------------------------------------


@pytest.mark.parametrize(("action", "form"), [
    ("CreateQueue", b"Action=CreateQueue&QueueName=sneaky&Version=2012-11-05"),
    ("ListQueues", b"Action=ListQueues&Version=2012-11-05"),
])
def test_create_queue_or_list_queues_sent_to_a_queue_url_is_an_invalid_action(
    handler: Frontend, sqs: Any, action: str, form: bytes
) -> None:
    sqs.create_queue(QueueName="orders")
    response = send(handler, "POST", QUEUE_PATH, form, {"Content-Type": FORM})
    assert xml_error(response) == (
        400, "InvalidAction", f"The action {action} is not valid for this endpoint.")
    assert [u.rsplit("/", 1)[1] for u in sqs.list_queues()["QueueUrls"]] == ["orders"]
    # The same on the service's own URL is served.
    assert send(handler, "POST", "/", form, {"Content-Type": FORM}).status == 200


# -- NonExistentQueue ----------------------------------------------------------------------


def test_a_missing_queue_over_the_query_protocol_is_for_this_wsdl_version(
    handler: Frontend, sqs: Any
) -> None:
    response = send(handler, "GET", "/?Action=GetQueueUrl&QueueName=nope&Version=2012-11-05")
    assert xml_error(response) == (
        400, "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist for this wsdl version.")
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.get_queue_url(QueueName="nope")
    assert caught.value.response["Error"]["Message"] == "The specified queue does not exist."
