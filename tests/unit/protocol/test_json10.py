"""AWS JSON 1.0 parsing and success responses, against real botocore."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.messages.rules import parse_message_attributes
from chalicelib.domain.results import attributes_json
from chalicelib.errors import SqsError
from chalicelib.protocol import json10
from chalicelib.protocol.md5 import md5_of_attributes, md5_of_body
from tests.wire_helpers import answer_with

HEADERS = {"X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": json10.CONTENT_TYPE}


def _code(err: pytest.ExceptionInfo[SqsError]) -> str:
    return err.value.query_code


# -- parse_request -----------------------------------------------------------------


def test_parse_request_reads_action_and_params() -> None:
    req = json10.parse_request(HEADERS, b'{"QueueUrl": "u", "MessageBody": "hi"}')
    assert req == json10.SqsRequest("SendMessage", {"QueueUrl": "u", "MessageBody": "hi"})


def test_header_names_are_case_insensitive() -> None:
    req = json10.parse_request({"x-amz-target": "AmazonSQS.ListQueues"}, b"{}")
    assert req.action == "ListQueues"


@pytest.mark.parametrize("body", [None, b"", b"  \n"])
def test_an_empty_body_means_no_parameters(body: bytes | None) -> None:
    assert json10.parse_request({"X-Amz-Target": "AmazonSQS.ListQueues"}, body).params == {}


@pytest.mark.parametrize(
    "target",
    [None, "", "AmazonSQS.", "AmazonSQS.Bogus", "AmazonSNS.Publish", "amazonsqs.SendMessage"],
)
def test_a_missing_or_unknown_target_is_invalid_action(target: str | None) -> None:
    headers = {} if target is None else {"X-Amz-Target": target}
    with pytest.raises(SqsError) as caught:
        json10.parse_request(headers, b"{}")
    assert caught.value.code == "UnknownOperationException"
    assert _code(caught) == "InvalidAction"


@pytest.mark.parametrize(
    "body", [b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"a": NaN}', b"null", b"[" * 100_000]
)
def test_a_body_that_is_not_a_json_object_is_a_serialization_error(body: bytes) -> None:
    with pytest.raises(SqsError) as caught:
        json10.parse_request(HEADERS, body)
    assert caught.value.code == "SerializationException"
    assert caught.value.status == 400


def test_is_json_request_tells_json_from_query() -> None:
    assert json10.is_json_request({"x-amz-target": "AmazonSQS.ListQueues"})
    assert json10.is_json_request({"Content-Type": "application/x-amz-json-1.0"})
    assert not json10.is_json_request(
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    )


def test_requests_botocore_sends_parse_back_to_their_parameters(sqs: Any) -> None:
    seen = answer_with(sqs, json10.success({}))
    sqs.send_message(
        QueueUrl="https://sealq.test/000000000000/q",
        MessageBody="héllo",
        DelaySeconds=5,
        MessageAttributes={
            "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
            "n": {"DataType": "Number.int", "StringValue": "42"},
        },
    )
    request = seen[0]
    # botocore holds prepared header values as bytes; Chalice hands the app str.
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    parsed = json10.parse_request(headers, request.body)
    assert parsed.action == "SendMessage"
    assert parsed.params["DelaySeconds"] == 5
    attrs = parse_message_attributes(parsed.params["MessageAttributes"])
    assert attrs["bin"] == {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"}
    assert attrs["n"] == {"DataType": "Number.int", "StringValue": "42"}


# -- success -------------------------------------------------------------------------


def test_success_is_a_json_200_with_a_request_id() -> None:
    resp = json10.success({"QueueUrl": "u"}, "rid")
    assert resp.status == 200
    assert resp.headers == {"Content-Type": json10.CONTENT_TYPE, "x-amzn-RequestId": "rid"}
    assert json.loads(resp.body) == {"QueueUrl": "u"}


def test_success_makes_up_a_request_id_when_none_is_given() -> None:
    assert json10.success({}).headers["x-amzn-RequestId"]


def test_success_keeps_non_ascii_as_utf8_but_survives_lone_surrogates() -> None:
    assert "é" in json10.success({"Body": "é"}).body
    body = json10.success({"Body": "\ud800"}).body
    body.encode("utf-8")
    assert json.loads(body) == {"Body": "\ud800"}


def test_botocore_parses_a_get_queue_url_success(sqs: Any) -> None:
    answer_with(sqs, json10.success({"QueueUrl": "https://sealq.test/000000000000/q"}, "r"))
    result = sqs.get_queue_url(QueueName="q")
    assert result["QueueUrl"] == "https://sealq.test/000000000000/q"
    assert result["ResponseMetadata"]["RequestId"] == "r"


def test_botocore_parses_a_received_message_with_binary_attributes(sqs: Any) -> None:
    attrs: dict[str, dict[str, Any]] = {
        "bin": {"DataType": "Binary", "BinaryValue": b"\x00\xffdata"},
        "s": {"DataType": "String", "StringValue": "ünïcode"},
    }
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "h1",
        "Body": "body ✓",
        "MD5OfBody": md5_of_body("body ✓"),
        "MessageAttributes": attributes_json(attrs),
        "MD5OfMessageAttributes": md5_of_attributes(attrs),
        "Attributes": {"SentTimestamp": "1700000000000"},
    }
    answer_with(sqs, json10.success({"Messages": [message]}))
    result = sqs.receive_message(QueueUrl="u", MessageAttributeNames=["All"])
    got = result["Messages"][0]
    assert got["Body"] == "body ✓"
    assert got["MessageAttributes"]["bin"]["BinaryValue"] == b"\x00\xffdata"
    assert got["MessageAttributes"]["s"]["StringValue"] == "ünïcode"
    assert got["MD5OfMessageAttributes"] == md5_of_attributes(attrs)
