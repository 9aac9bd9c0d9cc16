"""The query protocol end to end: an old-SDK stand-in (botocore with the query model)
served by one handler container on moto; every action shared with JSON 1.0."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse, HeadersDict
from botocore.exceptions import ClientError

from chalicelib.clock import FakeClock
from chalicelib.domain.messages.rules import parse_message_attributes
from chalicelib.handler.frontend import Frontend
from chalicelib.protocol.md5 import md5_of_attributes
from tests.harness import ENDPOINT, REGION, TEST_CREDENTIALS, Fleet, _Raw
from tests.query_client import NAMESPACE, query_client

NS = {"q": NAMESPACE}


@pytest.fixture
def handler(stack: None, clock: FakeClock) -> Frontend:
    return Fleet(clock).handler()


def call(handler: Frontend, method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, ET.Element]:
    parts = urlsplit(url)
    request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers or {}))
    request.headers["Host"] = parts.netloc
    SigV4Auth(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)  # signed, as any client
    signed = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    response = handler.handle(
        signed, body, ENDPOINT, method=method, query=parts.query, path=parts.path or "/",
    )
    assert response.headers["Content-Type"] == "text/xml"
    return response.status, ET.fromstring(response.body)


@pytest.fixture
def sqs(handler: Frontend, tmp_path: Path) -> Any:
    client = query_client(ENDPOINT, tmp_path)

    def serve(request: Any, **_: Any) -> AWSResponse:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = {
            k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
        }
        parts = urlsplit(request.url)
        headers.setdefault("Host", parts.netloc)  # as the HTTP layer sends it
        response = handler.handle(
            headers, body, ENDPOINT, method=request.method,
            query=parts.query, path=parts.path or "/",
        )
        assert response.headers["Content-Type"] == "text/xml"
        return AWSResponse(
            request.url, response.status, HeadersDict(response.headers),
            _Raw(response.body.encode("utf-8")),
        )

    client.meta.events.register("before-send.sqs.*", serve)
    return client


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_queue_lifecycle_over_the_query_protocol(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="orders",
        Attributes={"VisibilityTimeout": "45", "DelaySeconds": "0"},
        tags={"team": "blue"},
    )["QueueUrl"]
    assert url == f"{ENDPOINT}/000000000000/orders"
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    sqs.create_queue(QueueName="other")
    assert sqs.list_queues()["QueueUrls"] == [url, f"{ENDPOINT}/000000000000/other"]
    assert sqs.list_queues(QueueNamePrefix="ord")["QueueUrls"] == [url]
    assert sqs.list_queues(QueueNamePrefix="none").get("QueueUrls", []) == []
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45"
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"
    ] == {"VisibilityTimeout": "60"}
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "blue"}
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test", "tier": "1"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["team", "tier"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}
    sqs.purge_queue(QueueUrl=url)
    sqs.delete_queue(QueueUrl=url)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.get_queue_url(QueueName="orders")
    assert code(caught) == "AWS.SimpleQueueService.NonExistentQueue"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_messages_with_attributes_round_trip_and_md5s_match(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    attributes = {
        "s": {"DataType": "String", "StringValue": "caf\u00e9 <&>"},
        "n": {"DataType": "Number", "StringValue": "-12.5"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    }
    body = "line one\r\nline <two> & \"three\""
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    expected_attributes_md5 = md5_of_attributes(parse_message_attributes(attributes))
    assert sent["MD5OfMessageBody"] == hashlib.md5(body.encode()).hexdigest()
    assert sent["MD5OfMessageAttributes"] == expected_attributes_md5
    got = sqs.receive_message(
        QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"],
        MaxNumberOfMessages=10,
    )["Messages"]
    assert len(got) == 1
    message = got[0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert message["MessageAttributes"] == attributes
    assert message["MD5OfMessageAttributes"] == expected_attributes_md5
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "SentTimestamp" in message["Attributes"]
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
    )
    again = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []


def test_the_three_batch_actions(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sent = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "one"},
            {"Id": "b", "MessageBody": "two", "DelaySeconds": 0,
             "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "1"}}},
            {"Id": "c", "MessageBody": "three", "DelaySeconds": 901},
        ],
    )
    assert sorted(e["Id"] for e in sent["Successful"]) == ["a", "b"]
    assert [(e["Id"], e["Code"], e["SenderFault"]) for e in sent["Failed"]] == [
        ("c", "InvalidParameterValue", True)
    ]
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["one", "two"]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": f"m{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 60}
            for i, m in enumerate(got)
        ],
    )
    assert sorted(e["Id"] for e in changed["Successful"]) == ["m0", "m1"]
    assert changed.get("Failed", []) == []
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": f"m{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        + [{"Id": "forged", "ReceiptHandle": "not-a-handle"}],
    )
    assert sorted(e["Id"] for e in deleted["Successful"]) == ["m0", "m1"]
    assert [(e["Id"], e["Code"]) for e in deleted["Failed"]] == [
        ("forged", "ReceiptHandleIsInvalid")
    ]
    with pytest.raises(ClientError) as caught:
        sqs.send_message_batch(QueueUrl=url, Entries=[])
    assert code(caught) == "AWS.SimpleQueueService.EmptyBatchRequest"


def test_errors_are_xml_with_the_legacy_code(sqs: Any) -> None:
    url = f"{ENDPOINT}/000000000000/missing"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.send_message(QueueUrl=url, MessageBody="x")
    assert code(caught) == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError) as missing:
        sqs.create_queue(QueueName="")
    assert code(missing) == "MissingParameter"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_get_queue_url_as_a_get(handler: Frontend, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    status, root = call(
        handler, "GET", "/?Action=GetQueueUrl&QueueName=orders&Version=2012-11-05"
    )
    assert status == 200
    assert root.find("q:GetQueueUrlResult/q:QueueUrl", NS).text == url  # type: ignore[union-attr]
    assert root.find("q:ResponseMetadata/q:RequestId", NS) is not None


def test_a_query_to_a_queue_path_means_that_queue(handler: Frontend, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    status, _ = call(
        handler, "POST", "/000000000000/orders",
        b"Action=SendMessage&Version=2012-11-05&MessageBody=hi",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    status, root = call(
        handler, "GET", "/000000000000/orders?Action=ReceiveMessage&Version=2012-11-05"
    )
    assert status == 200
    assert root.find("q:ReceiveMessageResult/q:Message/q:Body", NS).text == "hi"  # type: ignore[union-attr]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
        "ApproximateNumberOfMessagesNotVisible"
    ] == "1"


@pytest.mark.parametrize(
    ("target", "body", "status", "error"),
    [
        ("/?Action=Bogus&Version=2012-11-05", None, 400, "InvalidAction"),
        ("/", b"Version=2012-11-05", 400, "InvalidAction"),
        ("/?Action=GetQueueUrl&Version=2012-11-05", None, 400, "MissingParameter"),
        ("/?Action=ReceiveMessage&QueueUrl=x&MaxNumberOfMessages=lots", None, 400,
         "InvalidParameterValue"),
        ("/", b"Action=ListQueues&MaxResults=0", 400, "InvalidParameterValue"),
        ("/", b"Action=GetQueueUrl&QueueName=nope", 400,
         "AWS.SimpleQueueService.NonExistentQueue"),
        ("/", b"Action=AddPermission&QueueUrl=x&Label=l", 400,
         "AWS.SimpleQueueService.NonExistentQueue"),
    ],
)
def test_bad_query_requests_get_xml_errors(
    handler: Frontend, target: str, body: bytes | None, status: int, error: str
) -> None:
    method = "POST" if body else "GET"
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    got, root = call(handler, method, target, body, headers)
    assert got == status
    assert root.tag == f"{{{NAMESPACE}}}ErrorResponse"
    assert root.find("q:Error/q:Code", NS).text == error  # type: ignore[union-attr]
    assert root.find("q:Error/q:Type", NS).text == "Sender"  # type: ignore[union-attr]
