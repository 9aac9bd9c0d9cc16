"""Every operation in botocore's SQS model over raw HTTP in the query protocol (a form
POST and a GET), success and error, read by botocore's own query parser and by an XML
parser, and compared with the same request over AWS JSON 1.0.

The table below must name every operation of the model (a new one fails the test until
it has a row). Each row prepares its state through the JSON client on a fresh stack
(memory ports: nothing here needs moto), then gives the parameters of one request that
succeeds and one that fails. Values that differ by nature between two runs (ids,
receipt handles, timestamps) are compared by presence only.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.model
import botocore.parsers
import botocore.serialize
import botocore.session
import pytest
from botocore import xform_name
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from chalicelib import settings
from chalicelib.clock import FakeClock
from chalicelib.handler import container
from chalicelib.handler.frontend import Frontend
from tests.harness import ENDPOINT, REGION, TEST_CREDENTIALS, install_test_key, sqs_client
from tests.memory import MemoryKeyService, memory_ports
from tests.query_client import NAMESPACE, query_model

NS = {"q": NAMESPACE}
ACCOUNT = "000000000000"
QUEUE = f"{ENDPOINT}/{ACCOUNT}/q"
MISSING = f"{ENDPOINT}/{ACCOUNT}/missing"
DLQ_ARN = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dead"
# Where AWS's query text differs from its JSON 1.0 text (recorded), by legacy code.
QUERY_TEXTS = {
    "AWS.SimpleQueueService.NonExistentQueue":
        "The specified queue does not exist for this wsdl version.",
}
# Members whose values differ between two runs of the same request.
VOLATILE = frozenset({
    "MessageId", "ReceiptHandle", "RequestId", "TaskHandle", "StartedTimestamp",
    "SentTimestamp", "ApproximateFirstReceiveTimestamp", "CreatedTimestamp",
    "LastModifiedTimestamp", "SequenceNumber",
})


class Stack:
    """A fresh handler on memory ports; move tasks' workers are not started."""

    def __init__(self, clock: FakeClock) -> None:
        ports = memory_ports(clock)
        keys = MemoryKeyService(clock)
        self.handler = container.build_frontend(
            settings.get(), ports=ports, key_service=keys, clock=clock, local_clock=clock,
            sleep=clock.advance, dispatch=lambda event: None,
        )
        install_test_key(ports.accounts, keys, clock)
        self.sqs = sqs_client(self.handler, retries=1)


# -- the table: setup (JSON client) -> (params that succeed, params that fail) --------------


def _queue(sqs: Any) -> None:
    sqs.create_queue(QueueName="q")


def _message(sqs: Any) -> str:
    _queue(sqs)
    sqs.send_message(QueueUrl=QUEUE, MessageBody="hello")
    return str(sqs.receive_message(QueueUrl=QUEUE)["Messages"][0]["ReceiptHandle"])


def _dead_letters(sqs: Any) -> None:
    sqs.create_queue(QueueName="dead")
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 1})
    sqs.create_queue(QueueName="q", Attributes={"RedrivePolicy": policy})


Params = dict[str, Any]
Row = Callable[[Any], tuple[Params | None, Params]]


def add_permission(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    grant = {"AWSAccountIds": ["222222222222", "333333333333"],
             "Actions": ["SendMessage", "ReceiveMessage"]}
    return {"QueueUrl": QUEUE, "Label": "partners", **grant}, {
        "QueueUrl": QUEUE, "Label": "bad label!", **grant}


def remove_permission(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    sqs.add_permission(QueueUrl=QUEUE, Label="partners", AWSAccountIds=["222222222222"],
                       Actions=["SendMessage"])
    return {"QueueUrl": QUEUE, "Label": "partners"}, {"QueueUrl": QUEUE, "Label": "nope"}


def cancel_message_move_task(sqs: Any) -> tuple[Params | None, Params]:
    _dead_letters(sqs)
    handle = sqs.start_message_move_task(SourceArn=DLQ_ARN)["TaskHandle"]
    return {"TaskHandle": handle}, {"TaskHandle": "bm90IGEgdGFzaw=="}


def change_message_visibility(sqs: Any) -> tuple[Params | None, Params]:
    handle = _message(sqs)
    return ({"QueueUrl": QUEUE, "ReceiptHandle": handle, "VisibilityTimeout": 10},
            {"QueueUrl": QUEUE, "ReceiptHandle": handle, "VisibilityTimeout": 43201})


def change_message_visibility_batch(sqs: Any) -> tuple[Params | None, Params]:
    handle = _message(sqs)
    return ({"QueueUrl": QUEUE, "Entries": [
        {"Id": "a", "ReceiptHandle": handle, "VisibilityTimeout": 5},
        {"Id": "b", "ReceiptHandle": "forged", "VisibilityTimeout": 5}]},
        {"QueueUrl": QUEUE, "Entries": []})


def create_queue(sqs: Any) -> tuple[Params | None, Params]:
    return ({"QueueName": "new", "Attributes": {"DelaySeconds": "3"}, "tags": {"a": "b"}},
            {"QueueName": "bad name!"})


def delete_message(sqs: Any) -> tuple[Params | None, Params]:
    handle = _message(sqs)
    return ({"QueueUrl": QUEUE, "ReceiptHandle": handle},
            {"QueueUrl": QUEUE, "ReceiptHandle": "forged"})


def delete_message_batch(sqs: Any) -> tuple[Params | None, Params]:
    handle = _message(sqs)
    return ({"QueueUrl": QUEUE, "Entries": [{"Id": "a", "ReceiptHandle": handle}]},
            {"QueueUrl": QUEUE, "Entries": [{"Id": "a", "ReceiptHandle": handle},
                                           {"Id": "a", "ReceiptHandle": handle}]})


def delete_queue(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    return {"QueueUrl": QUEUE}, {"QueueUrl": MISSING}


def get_queue_attributes(sqs: Any) -> tuple[Params | None, Params]:
    _dead_letters(sqs)
    return ({"QueueUrl": QUEUE, "AttributeNames": ["All"]},
            {"QueueUrl": QUEUE, "AttributeNames": ["Bogus"]})


def get_queue_url(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    return {"QueueName": "q"}, {"QueueName": "missing"}


def list_dead_letter_source_queues(sqs: Any) -> tuple[Params | None, Params]:
    _dead_letters(sqs)
    return {"QueueUrl": f"{ENDPOINT}/{ACCOUNT}/dead"}, {"QueueUrl": MISSING}


def list_message_move_tasks(sqs: Any) -> tuple[Params | None, Params]:
    _dead_letters(sqs)
    sqs.start_message_move_task(SourceArn=DLQ_ARN, MaxNumberOfMessagesPerSecond=5)
    return ({"SourceArn": DLQ_ARN, "MaxResults": 10},
            {"SourceArn": DLQ_ARN, "MaxResults": 11})


def list_queue_tags(sqs: Any) -> tuple[Params | None, Params]:
    sqs.create_queue(QueueName="q", tags={"team": "blue", "cost": "1"})
    return {"QueueUrl": QUEUE}, {"QueueUrl": MISSING}


def list_queues(sqs: Any) -> tuple[Params | None, Params]:
    for name in ("q", "q2", "other"):
        sqs.create_queue(QueueName=name)
    return {"QueueNamePrefix": "q", "MaxResults": 1}, {"MaxResults": 0}


def purge_queue(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    return {"QueueUrl": QUEUE}, {"QueueUrl": MISSING}


def receive_message(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    sqs.send_message(QueueUrl=QUEUE, MessageBody="<b>&amp;</b>", MessageAttributes={
        "s": {"DataType": "String", "StringValue": "x"},
        "n": {"DataType": "Number", "StringValue": "1.5"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}})
    return ({"QueueUrl": QUEUE, "MessageAttributeNames": ["All"],
             "MessageSystemAttributeNames": ["All"], "MaxNumberOfMessages": 10},
            {"QueueUrl": QUEUE, "MaxNumberOfMessages": 11})


def send_message(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    return ({"QueueUrl": QUEUE, "MessageBody": "hi", "DelaySeconds": 1,
             "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
            {"QueueUrl": QUEUE, "MessageBody": "hi", "DelaySeconds": 901})


def send_message_batch(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    return ({"QueueUrl": QUEUE, "Entries": [
        {"Id": "a", "MessageBody": "one"},
        {"Id": "b", "MessageBody": "two", "DelaySeconds": 901}]},
        {"QueueUrl": QUEUE, "Entries": [{"Id": f"e{n}", "MessageBody": "x"} for n in range(11)]})


def set_queue_attributes(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    return ({"QueueUrl": QUEUE, "Attributes": {"VisibilityTimeout": "5"}},
            {"QueueUrl": QUEUE, "Attributes": {"VisibilityTimeout": "-1"}})


def start_message_move_task(sqs: Any) -> tuple[Params | None, Params]:
    _dead_letters(sqs)
    return ({"SourceArn": DLQ_ARN, "DestinationArn": DLQ_ARN[:-4] + "q",
             "MaxNumberOfMessagesPerSecond": 3},
            {"SourceArn": DLQ_ARN[:-4] + "q"})


def tag_queue(sqs: Any) -> tuple[Params | None, Params]:
    _queue(sqs)
    return {"QueueUrl": QUEUE, "Tags": {"a": "b"}}, {"QueueUrl": QUEUE, "Tags": {}}


def untag_queue(sqs: Any) -> tuple[Params | None, Params]:
    sqs.create_queue(QueueName="q", tags={"a": "b"})
    return {"QueueUrl": QUEUE, "TagKeys": ["a"]}, {"QueueUrl": MISSING, "TagKeys": ["a"]}


ROWS: dict[str, Row] = {
    "AddPermission": add_permission,
    "CancelMessageMoveTask": cancel_message_move_task,
    "ChangeMessageVisibility": change_message_visibility,
    "ChangeMessageVisibilityBatch": change_message_visibility_batch,
    "CreateQueue": create_queue,
    "DeleteMessage": delete_message,
    "DeleteMessageBatch": delete_message_batch,
    "DeleteQueue": delete_queue,
    "GetQueueAttributes": get_queue_attributes,
    "GetQueueUrl": get_queue_url,
    "ListDeadLetterSourceQueues": list_dead_letter_source_queues,
    "ListMessageMoveTasks": list_message_move_tasks,
    "ListQueueTags": list_queue_tags,
    "ListQueues": list_queues,
    "PurgeQueue": purge_queue,
    "ReceiveMessage": receive_message,
    "RemovePermission": remove_permission,
    "SendMessage": send_message,
    "SendMessageBatch": send_message_batch,
    "SetQueueAttributes": set_queue_attributes,
    "StartMessageMoveTask": start_message_move_task,
    "TagQueue": tag_queue,
    "UntagQueue": untag_queue,
}


def test_every_operation_of_the_model_has_a_row() -> None:
    model = botocore.session.get_session().get_service_model("sqs")
    assert set(model.operation_names) == set(ROWS)


# -- the wire -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def query_service() -> botocore.model.ServiceModel:
    return botocore.model.ServiceModel(query_model(), "sqs")


def _form(service: botocore.model.ServiceModel, action: str, params: Params) -> str:
    """The request as botocore's query serializer writes it."""
    request = botocore.serialize.QuerySerializer().serialize_to_request(
        params, service.operation_model(action))
    return urlencode(request["body"])


def _send(handler: Frontend, method: str, form: str) -> tuple[int, str]:
    """One raw, signed HTTP request: the form as a POST body or as a GET query string."""
    url = f"{ENDPOINT}/" + (f"?{form}" if method == "GET" else "")
    body = form.encode() if method == "POST" else b""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    request.headers["Host"] = urlsplit(ENDPOINT).netloc
    SigV4Auth(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)
    signed = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    parts = urlsplit(url)
    response = handler.handle(signed, body or None, ENDPOINT, method=method,
                              query=parts.query, path=parts.path or "/")
    assert response.headers["Content-Type"] == "text/xml"
    return response.status, response.body


def _parse(service: botocore.model.ServiceModel, action: str, status: int, body: str) -> Any:
    operation = service.operation_model(action)
    return botocore.parsers.QueryParser().parse(
        {"body": body.encode(), "headers": {}, "status_code": status}, operation.output_shape)


def _normal(value: Any) -> Any:
    """A result with the volatile values replaced by a marker, and no metadata."""
    if isinstance(value, dict):
        return {k: ("*" if k in VOLATILE else _normal(v)) for k, v in value.items()
                if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _json(clock: FakeClock, row: Row, action: str, ok: bool) -> tuple[dict[str, Any], Params]:
    stack = Stack(clock)
    good, bad = row(stack.sqs)
    params = good if ok else bad
    assert params is not None
    method = getattr(stack.sqs, xform_name(action))
    try:
        return _normal(method(**params)), params
    except stack.sqs.exceptions.ClientError as err:
        return {"Error": {k: err.response["Error"][k] for k in ("Code", "Message")}}, params


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("action", sorted(ROWS))
def test_each_action_over_the_query_protocol_answers_as_over_json(
    query_service: botocore.model.ServiceModel, clock: FakeClock, action: str, method: str,
) -> None:
    row = ROWS[action]
    for ok in (True, False):
        expected, _ = _json(clock, row, action, ok)
        stack = Stack(clock)
        good, bad = row(stack.sqs)
        params = good if ok else bad
        assert params is not None
        status, body = _send(stack.handler, method, _form(query_service, action, params))
        root = ET.fromstring(body)
        parsed = _parse(query_service, action, status, body)
        if ok:
            assert status == 200, body
            assert root.tag == f"{{{NAMESPACE}}}{action}Response"
            assert root.find("q:ResponseMetadata/q:RequestId", NS) is not None
            wrapper = root.find(f"q:{action}Result", NS)
            output = query_service.operation_model(action).output_shape
            # A result element exactly when the model has output members and AWS
            # writes some; an empty one is left out.
            if output is None or not _normal(parsed):
                assert wrapper is None or len(wrapper) == 0
            else:
                assert wrapper is not None
            assert _normal(parsed) == expected, (action, method)
        else:
            assert status >= 400, body
            assert root.tag == f"{{{NAMESPACE}}}ErrorResponse"
            error = root.find("q:Error", NS)
            assert error is not None
            assert error.findtext("q:Type", namespaces=NS) in ("Sender", "Receiver")
            assert error.findtext("q:Code", namespaces=NS) == parsed["Error"]["Code"]
            assert error.findtext("q:Message", namespaces=NS) == parsed["Error"]["Message"]
            assert root.findtext("q:RequestId", namespaces=NS)
            code = expected["Error"]["Code"]
            expected["Error"]["Message"] = QUERY_TEXTS.get(code, expected["Error"]["Message"])
            assert {"Error": {k: parsed["Error"][k] for k in ("Code", "Message")}} == expected

