"""The query protocol: form and query-string parameters to JSON-shaped params, results and
errors to XML, checked against botocore's own query serializer and XML parser."""

from __future__ import annotations

import base64
import copy
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import botocore.parsers
import pytest
from botocore.model import ServiceModel

from chalicelib import errors
from chalicelib.aws import service_model
from chalicelib.errors import SqsError
from chalicelib.protocol import json10, query
from chalicelib.protocol.wire import wire_for
from tests.query_client import LIST_ELEMENTS, MAP_MEMBERS, NAMESPACE, query_model

QUEUE = "http://sealq.test/000000000000/orders"
NS = {"q": NAMESPACE}


@pytest.fixture(scope="module")
def old_model() -> ServiceModel:
    return ServiceModel(query_model(), "sqs")


def parse(action: str, **params: Any) -> dict[str, Any]:
    body = urlencode({"Action": action, "Version": "2012-11-05", **params}).encode()
    request = query.parse_request({}, body)
    assert request.action == action
    return request.params


def refused(body: bytes, **kwargs: Any) -> SqsError:
    with pytest.raises(SqsError) as caught:
        query.parse_request({}, body, **kwargs)
    return caught.value


# -- names -------------------------------------------------------------------------


def test_query_names_derived_from_the_model_match_the_old_query_model() -> None:
    model = service_model.sqs()
    checked = 0
    for shape_name in model.shape_names:
        shape = model.shape_for(shape_name)
        # Message-move tasks came after the query model: no query name on record (the
        # stand-in client follows the same convention as the rest, so nothing to check).
        if shape.type_name != "structure" or shape_name == "ListMessageMoveTasksResult":
            continue
        for name, member in shape.members.items():
            if not member.serialization.get("flattened"):
                continue
            if member.type_name == "list":
                expected = LIST_ELEMENTS.get(member.name, name)
            else:
                expected = MAP_MEMBERS[name]
            assert query.member_query_name(member, name) == expected, (shape_name, name)
            checked += 1
    assert checked > 20


# -- parsing: every flattened form ------------------------------------------------------


def test_create_queue_reads_attributes_and_tags() -> None:
    params = parse(
        "CreateQueue",
        QueueName="orders",
        **{
            "Attribute.1.Name": "VisibilityTimeout",
            "Attribute.1.Value": "45",
            "Attribute.2.Name": "DelaySeconds",
            "Attribute.2.Value": "3",
            "Tag.1.Key": "team",
            "Tag.1.Value": "blue",
        },
    )
    assert params == {
        "QueueName": "orders",
        "Attributes": {"VisibilityTimeout": "45", "DelaySeconds": "3"},
        "tags": {"team": "blue"},
    }


def test_set_queue_attributes_and_tag_queue_read_their_maps() -> None:
    assert parse(
        "SetQueueAttributes",
        QueueUrl=QUEUE,
        **{"Attribute.1.Name": "DelaySeconds", "Attribute.1.Value": "5"},
    ) == {"QueueUrl": QUEUE, "Attributes": {"DelaySeconds": "5"}}
    assert parse(
        "TagQueue", QueueUrl=QUEUE, **{"Tag.1.Key": "a", "Tag.1.Value": "", "Tag.2.Key": "b",
                                       "Tag.2.Value": "2"}
    ) == {"QueueUrl": QUEUE, "Tags": {"a": "", "b": "2"}}
    assert parse("UntagQueue", QueueUrl=QUEUE, **{"TagKey.1": "a", "TagKey.2": "b"}) == {
        "QueueUrl": QUEUE,
        "TagKeys": ["a", "b"],
    }


def test_send_message_reads_string_number_and_binary_attributes() -> None:
    params = parse(
        "SendMessage",
        QueueUrl=QUEUE,
        MessageBody="hello",
        DelaySeconds="7",
        **{
            "MessageAttribute.1.Name": "s",
            "MessageAttribute.1.Value.DataType": "String",
            "MessageAttribute.1.Value.StringValue": "text",
            "MessageAttribute.2.Name": "n",
            "MessageAttribute.2.Value.DataType": "Number.int",
            "MessageAttribute.2.Value.StringValue": "12",
            "MessageAttribute.3.Name": "b",
            "MessageAttribute.3.Value.DataType": "Binary",
            "MessageAttribute.3.Value.BinaryValue": base64.b64encode(b"\x00\x01").decode(),
            "MessageSystemAttribute.1.Name": "AWSTraceHeader",
            "MessageSystemAttribute.1.Value.DataType": "String",
            "MessageSystemAttribute.1.Value.StringValue": "Root=1",
        },
    )
    assert params == {
        "QueueUrl": QUEUE,
        "MessageBody": "hello",
        "DelaySeconds": 7,
        "MessageAttributes": {
            "s": {"DataType": "String", "StringValue": "text"},
            "n": {"DataType": "Number.int", "StringValue": "12"},
            "b": {"DataType": "Binary", "BinaryValue": "AAE="},
        },
        "MessageSystemAttributes": {
            "AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}
        },
    }


def test_receive_message_reads_name_lists_and_numbers() -> None:
    params = parse(
        "ReceiveMessage",
        QueueUrl=QUEUE,
        MaxNumberOfMessages="10",
        WaitTimeSeconds="0",
        VisibilityTimeout="30",
        **{
            "AttributeName.1": "All",
            "MessageAttributeName.1": "All",
            "MessageAttributeName.2": "x",
            "MessageSystemAttributeNames.1": "SenderId",
        },
    )
    assert params == {
        "QueueUrl": QUEUE,
        "AttributeNames": ["All"],
        "MessageSystemAttributeNames": ["SenderId"],
        "MessageAttributeNames": ["All", "x"],
        "MaxNumberOfMessages": 10,
        "VisibilityTimeout": 30,
        "WaitTimeSeconds": 0,
    }


def test_batch_entries_are_read_in_index_order() -> None:
    entries = {f"SendMessageBatchRequestEntry.{i}.Id": f"e{i}" for i in (10, 2, 1, 9)}
    entries.update({f"SendMessageBatchRequestEntry.{i}.MessageBody": "b" for i in (10, 2, 1, 9)})
    entries["SendMessageBatchRequestEntry.2.DelaySeconds"] = "3"
    params = parse("SendMessageBatch", QueueUrl=QUEUE, **entries)
    assert [e["Id"] for e in params["Entries"]] == ["e1", "e2", "e9", "e10"]
    assert params["Entries"][1]["DelaySeconds"] == 3


def test_delete_and_change_visibility_batches_read_their_entries() -> None:
    assert parse(
        "DeleteMessageBatch",
        QueueUrl=QUEUE,
        **{
            "DeleteMessageBatchRequestEntry.1.Id": "a",
            "DeleteMessageBatchRequestEntry.1.ReceiptHandle": "h1",
        },
    )["Entries"] == [{"Id": "a", "ReceiptHandle": "h1"}]
    assert parse(
        "ChangeMessageVisibilityBatch",
        QueueUrl=QUEUE,
        **{
            "ChangeMessageVisibilityBatchRequestEntry.1.Id": "a",
            "ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle": "h1",
            "ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout": "60",
        },
    )["Entries"] == [{"Id": "a", "ReceiptHandle": "h1", "VisibilityTimeout": 60}]


def test_list_queues_reads_prefix_and_max_results() -> None:
    assert parse("ListQueues", QueueNamePrefix="ord", MaxResults="5", NextToken="t") == {
        "QueueNamePrefix": "ord",
        "MaxResults": 5,
        "NextToken": "t",
    }


def test_an_empty_value_is_an_empty_list_and_a_bare_name_a_list_of_one() -> None:
    assert parse("GetQueueAttributes", QueueUrl=QUEUE, AttributeName="")["AttributeNames"] == []
    assert parse("GetQueueAttributes", QueueUrl=QUEUE, AttributeName="All")[
        "AttributeNames"
    ] == ["All"]


def test_parameters_outside_the_input_shape_are_ignored() -> None:
    assert parse(
        "GetQueueUrl", QueueName="orders", AWSAccessKeyId="AKID", SignatureVersion="4", Bogus="1"
    ) == {"QueueName": "orders"}


def test_a_get_query_string_is_read_and_the_body_wins() -> None:
    request = query.parse_request(
        {},
        b"QueueName=from-body",
        {"Action": ["GetQueueUrl"], "QueueName": ["from-query"], "Version": ["2012-11-05"]},
    )
    assert request == json10.SqsRequest("GetQueueUrl", {"QueueName": "from-body"})
    only_query = query.parse_request({}, None, {"Action": ["ListQueues"]})
    assert only_query == json10.SqsRequest("ListQueues", {})


def test_a_queue_path_stands_in_for_a_missing_queue_url() -> None:
    body = b"Action=PurgeQueue&Version=2012-11-05"
    assert query.parse_request({}, body, queue_url=QUEUE).params == {"QueueUrl": QUEUE}
    explicit = body + b"&QueueUrl=http%3A%2F%2Fother%2F000000000000%2Fx"
    assert query.parse_request({}, explicit, queue_url=QUEUE).params == {
        "QueueUrl": "http://other/000000000000/x"
    }


# -- parsing: bad input is an SQS error -------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        (b"Version=2012-11-05", "InvalidAction", 400),
        (b"Action=Bogus&Version=2012-11-05", "InvalidAction", 400),
        (b"Action=ListQueues&Version=2009-02-01", "InvalidParameterValue", 400),
        (b"Action=ListQueues&MaxResults=ten", "InvalidParameterValue", 400),
        (b"Action=ListQueues&MaxResults=1.5", "InvalidParameterValue", 400),
        (b"Action=ListQueues&MaxResults=", "InvalidParameterValue", 400),
        (b"Action=GetQueueAttributes&AttributeName.x=All", "MalformedQueryString", 404),
        (b"Action=GetQueueAttributes&AttributeName.0=All", "MalformedQueryString", 404),
        (b"Action=GetQueueAttributes&AttributeName.99999=All", "MalformedQueryString", 404),
        (b"Action=CreateQueue&QueueName=q&Attribute.1.Value=5", "MissingParameter", 400),
        (b"Action=CreateQueue&QueueName=q&Attribute.1.Name=DelaySeconds", "MissingParameter", 400),
        (b"Action=CreateQueue&QueueName.1=q", "MalformedQueryString", 404),
        (b"Action=ListQueues&\xff=1", "MalformedQueryString", 404),
        (b"Action=ListQueues&QueueNamePrefix=%ff", "MalformedQueryString", 404),
    ],
)
def test_bad_input_is_an_sqs_error(body: bytes, code: str, status: int) -> None:
    err = refused(body)
    assert (err.query_code, err.status) == (code, status)


def test_an_unknown_action_names_the_action() -> None:
    err = refused(b"Action=Bogus")
    assert err.message == "The action Bogus is not valid for this endpoint."


# -- protocol choice ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers", "params", "is_query"),
    [
        ("POST", {"X-Amz-Target": "AmazonSQS.ListQueues"}, {}, False),
        ("POST", {"Content-Type": "application/x-amz-json-1.0"}, {}, False),
        ("POST", {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, {}, True),
        ("GET", {}, {"Action": ["ListQueues"]}, True),
        ("GET", {}, {}, True),
        ("POST", {}, {"Action": ["ListQueues"]}, True),
        ("POST", {}, {}, False),
    ],
)
def test_a_client_is_answered_in_the_protocol_it_spoke(
    method: str, headers: dict[str, str], params: dict[str, list[str]], is_query: bool
) -> None:
    assert wire_for(method, headers, params).is_query is is_query


# -- responses ---------------------------------------------------------------------------


def read_back(model: ServiceModel, action: str, body: str, status: int = 200) -> Any:
    """What an old SDK makes of the XML: botocore's query parser with the query model."""
    parser = botocore.parsers.create_parser("query")
    parsed = parser.parse(
        {"body": body.encode("utf-8"), "headers": {}, "status_code": status},
        model.operation_model(action).output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


MESSAGE = {
    "MessageId": "m-1",
    "ReceiptHandle": "h-1",
    "MD5OfBody": "0" * 32,
    "Body": "a\r\nb <&> \"quoted\" \u00e9",
    "Attributes": {"SenderId": "000000000000", "ApproximateReceiveCount": "1"},
    "MD5OfMessageAttributes": "1" * 32,
    "MessageAttributes": {
        "s": {"DataType": "String", "StringValue": "x"},
        "b": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\xff").decode()},
    },
}
BATCH_FAILURE = {"Id": "2", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "no"}

OUTPUTS: list[tuple[str, dict[str, Any]]] = [
    ("CreateQueue", {"QueueUrl": QUEUE}),
    ("GetQueueUrl", {"QueueUrl": QUEUE}),
    ("ListQueues", {"QueueUrls": [QUEUE, QUEUE + "-2"], "NextToken": "abc"}),
    ("ListQueues", {}),
    ("GetQueueAttributes", {"Attributes": {"VisibilityTimeout": "30", "Policy": '{"a": "<b>"}'}}),
    ("ListQueueTags", {"Tags": {"team": "blue", "k": ""}}),
    ("ListDeadLetterSourceQueues", {"queueUrls": [QUEUE]}),
    (
        "SendMessage",
        {"MessageId": "m", "MD5OfMessageBody": "0" * 32, "MD5OfMessageAttributes": "1" * 32},
    ),
    ("ReceiveMessage", {"Messages": [MESSAGE, {**MESSAGE, "MessageId": "m-2"}]}),
    ("ReceiveMessage", {}),
    (
        "SendMessageBatch",
        {
            "Successful": [{"Id": "1", "MessageId": "m", "MD5OfMessageBody": "0" * 32}],
            "Failed": [BATCH_FAILURE],
        },
    ),
    ("DeleteMessageBatch", {"Successful": [{"Id": "1"}], "Failed": [BATCH_FAILURE]}),
    ("ChangeMessageVisibilityBatch", {"Successful": [{"Id": "1"}], "Failed": []}),
]


@pytest.mark.parametrize(("action", "data"), OUTPUTS)
def test_results_read_back_as_an_old_sdk_sees_them(
    old_model: ServiceModel, action: str, data: dict[str, Any]
) -> None:
    response = query.success(action, data, "req-1")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/xml"
    root = ET.fromstring(response.body)
    assert root.tag == f"{{{NAMESPACE}}}{action}Response"
    assert root.find("q:ResponseMetadata/q:RequestId", NS).text == "req-1"  # type: ignore[union-attr]
    # An empty flattened list leaves no element.
    expected = copy.deepcopy({k: v for k, v in data.items() if v != []})
    if action == "ReceiveMessage" and data:
        for message in expected["Messages"]:
            for value in message["MessageAttributes"].values():
                if isinstance(value.get("BinaryValue"), str):  # the parser decodes blobs
                    value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
    assert read_back(old_model, action, response.body) == expected


@pytest.mark.parametrize(
    "action",
    ["DeleteQueue", "DeleteMessage", "PurgeQueue", "SetQueueAttributes", "TagQueue",
     "UntagQueue", "ChangeMessageVisibility"],
)
def test_actions_without_output_answer_with_response_metadata_only(action: str) -> None:
    root = ET.fromstring(query.success(action, {}, "req-1").body)
    assert [child.tag for child in root] == [f"{{{NAMESPACE}}}ResponseMetadata"]


def test_bytes_are_sent_as_base64() -> None:
    body = query.success(
        "ReceiveMessage",
        {"Messages": [{"MessageAttributes": {"b": {"DataType": "Binary", "BinaryValue": b"\1"}}}]},
        "r",
    ).body
    assert "<BinaryValue>AQ==</BinaryValue>" in body


@pytest.mark.parametrize("text", ["\x00\x01\x0b", "\ud800 lone", "\ufffe\uffff", "]]>"])
def test_text_xml_cannot_carry_never_makes_the_document_invalid(text: str) -> None:
    response = query.failure(errors.invalid_parameter_value(f"bad {text}"), "r")
    message = ET.fromstring(response.body.encode("utf-8")).find("q:Error/q:Message", NS)
    assert message is not None and message.text is not None
    assert message.text.startswith("bad ")


def test_a_carriage_return_survives_the_round_trip(old_model: ServiceModel) -> None:
    body = query.success("ReceiveMessage", {"Messages": [{"Body": "a\rb\r\nc"}]}, "r").body
    assert read_back(old_model, "ReceiveMessage", body)["Messages"][0]["Body"] == "a\rb\r\nc"


@pytest.mark.parametrize(
    "err",
    [
        errors.queue_does_not_exist(),
        errors.purge_queue_in_progress("orders"),
        errors.missing_parameter("QueueName"),
        errors.unknown_operation("Bogus"),
        errors.internal_failure(),
    ],
)
def test_errors_are_error_responses_with_the_legacy_code_and_json_status(
    old_model: ServiceModel, err: SqsError
) -> None:
    response = query.failure(err, "req-9")
    assert response.status == json10.failure(err, "req-9").status
    root = ET.fromstring(response.body)
    assert root.tag == f"{{{NAMESPACE}}}ErrorResponse"
    assert root.find("q:Error/q:Type", NS).text == err.fault  # type: ignore[union-attr]
    assert root.find("q:Error/q:Code", NS).text == err.query_code  # type: ignore[union-attr]
    assert root.find("q:Error/q:Detail", NS) is not None
    assert root.find("q:RequestId", NS).text == "req-9"  # type: ignore[union-attr]
    parsed = botocore.parsers.create_parser("query").parse(
        {"body": response.body.encode(), "headers": {}, "status_code": response.status},
        old_model.operation_model("ListQueues").output_shape,
    )
    assert parsed["Error"]["Code"] == err.query_code
    assert parsed["Error"]["Message"] == err.query_message  # the protocol's own text


def test_the_query_protocol_says_a_missing_queue_is_for_this_wsdl_version() -> None:
    """Recorded on AWS: the query text names the WSDL; the JSON 1.0 one does not."""
    err = errors.queue_does_not_exist()
    assert err.query_message == "The specified queue does not exist for this wsdl version."
    assert "for this wsdl version" in query.failure(err, "r").body
    assert json10.failure(err, "r").body == (
        '{"__type":"com.amazonaws.sqs#QueueDoesNotExist",'
        '"message":"The specified queue does not exist."}')
