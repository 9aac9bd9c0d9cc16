"""Where AWS's recorded answers settle what sealq answers (issue "AWS-exact, second
round"), each on both protocols: a boto3 client (JSON 1.0) and an old-SDK stand-in
(the query protocol), served by one handler container on moto."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.exceptions import ClientError

from chalicelib.clock import FakeClock
from chalicelib.handler.frontend import Frontend
from tests.e2e import md5_of_message_attributes
from tests.harness import (
    ENDPOINT,
    REGION,
    TEST_ACCOUNT,
    Fleet,
    _Raw,
    allow_kms_key,
    kms_fault,
    sqs_client,
)
from tests.query_client import query_client

TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def fleet(stack: None, clock: FakeClock) -> Fleet:
    return Fleet(clock)


@pytest.fixture
def handler(fleet: Fleet) -> Frontend:
    return fleet.handler()


def _query_client(handler: Frontend, folder: Path) -> Any:
    client = query_client(ENDPOINT, folder)

    def serve(request: Any, **_: Any) -> AWSResponse:
        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = {k: (v.decode() if isinstance(v, bytes) else v)
                   for k, v in request.headers.items()}
        parts = urlsplit(request.url)
        headers.setdefault("Host", parts.netloc)
        response = handler.handle(headers, body, ENDPOINT, method=request.method,
                                  query=parts.query, path=parts.path or "/")
        return AWSResponse(request.url, response.status, HeadersDict(response.headers),
                           _Raw(response.body.encode("utf-8")))

    client.meta.events.register("before-send.sqs.*", serve)
    return client


@pytest.fixture(params=["json", "query"])
def sqs(request: pytest.FixtureRequest, handler: Frontend, tmp_path: Path) -> Any:
    """The same handler through JSON 1.0 (boto3) or the query protocol (an old SDK)."""
    if request.param == "json":
        return sqs_client(handler, retries=1)
    return _query_client(handler, tmp_path)


def refusal(call: Any, **params: Any) -> tuple[str, str, int]:
    """(code, message, status) of a refused call; the code is the legacy one either way."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"], caught.value.response["ResponseMetadata"][
        "HTTPStatusCode"]


def is_json(sqs: Any) -> bool:
    return bool(sqs.meta.service_model.protocol == "json")


def bodies(sqs: Any, url: str) -> list[str]:
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    return sorted(m["Body"] for m in got.get("Messages", []))


# 1 -----------------------------------------------------------------------------------


def test_a_queue_without_a_kms_key_lists_no_data_key_reuse_period(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]
    everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "KmsDataKeyReusePeriodSeconds" not in everything
    assert everything["SqsManagedSseEnabled"] == "true"
    named = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"])
    assert named["Attributes"] == {"SqsManagedSseEnabled": "true"}
    keyed = sqs.create_queue(QueueName="keyed", Attributes={
        "KmsMasterKeyId": "alias/sealq-default"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=keyed, AttributeNames=["All"])["Attributes"]
    assert attrs["KmsDataKeyReusePeriodSeconds"] == "300"


def test_a_reuse_period_set_without_a_kms_key_is_listed_as_set(sqs: Any) -> None:
    """sealq applies it to the service's own key, so it shows what was set."""
    url = sqs.create_queue(QueueName="short", Attributes={
        "KmsDataKeyReusePeriodSeconds": "60"})["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["KmsDataKeyReusePeriodSeconds"] == "60"


# 2 -----------------------------------------------------------------------------------


def test_any_kms_master_key_id_the_account_may_use_is_accepted_and_kms_answers_at_send(
    sqs: Any, fleet: Fleet
) -> None:
    allow_kms_key("testKeyId", "k" * 3000)
    url = sqs.create_queue(QueueName="keyed", Attributes={
        "KmsMasterKeyId": "testKeyId", "KmsDataKeyReusePeriodSeconds": "6000"})["QueueUrl"]
    named = ["KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"]
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=named)["Attributes"] == {
        "KmsMasterKeyId": "testKeyId", "KmsDataKeyReusePeriodSeconds": "6000",
        "SqsManagedSseEnabled": "false"}
    # KMS does not know the key: the send is refused with KMS's answer, nothing is stored.
    code, _, status = refusal(sqs.send_message, QueueUrl=url, MessageBody="x")
    assert (code, status) == ("KMS.NotFoundException", 400)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": "k" * 3000})
    # Real KMS refuses a key id over 2,048 characters as invalid input, before any lookup.
    fleet.kms_clients[0].meta.events.register(
        "before-call.kms.GenerateDataKey", kms_fault("ValidationException"))
    code, _, status = refusal(sqs.send_message, QueueUrl=url, MessageBody="x")
    assert (code, status) == ("KMS.NotFoundException", 400)
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"] == {"ApproximateNumberOfMessages": "0"}


@pytest.mark.parametrize("key", ["testKeyId", "k" * 3000, "has space", "alias/x"])
def test_a_kms_master_key_id_not_allowed_is_kms_access_denied_whatever_its_form(
    sqs: Any, key: str
) -> None:
    code, _, status = refusal(sqs.create_queue, QueueName="q",
                              Attributes={"KmsMasterKeyId": key})
    assert (code, status) == ("KMS.AccessDeniedException", 400)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    code, _, _ = refusal(sqs.set_queue_attributes, QueueUrl=url,
                         Attributes={"KmsMasterKeyId": key})
    assert code == "KMS.AccessDeniedException"


# 3, 4 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [("DeduplicationScope", "queue"),
                                             ("FifoThroughputLimit", "perQueue")])
def test_a_fifo_throughput_attribute_on_a_standard_queue_needs_fifo_queue(
    sqs: Any, name: str, value: str
) -> None:
    text = f"You can specify the {name} only when FifoQueue is set to true."
    assert refusal(sqs.create_queue, QueueName="plain", Attributes={name: value}) == (
        "InvalidAttributeName", text, 400)
    url = sqs.create_queue(QueueName="plain")["QueueUrl"]
    assert refusal(sqs.set_queue_attributes, QueueUrl=url, Attributes={name: value}) == (
        "InvalidAttributeName", text, 400)


def test_fifo_queue_false_on_a_fifo_queue_is_modifying_the_queue_type(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "true"})
    assert refusal(sqs.set_queue_attributes, QueueUrl=url, Attributes={"FifoQueue": "false"}) == (
        "InvalidAttributeValue",
        "Invalid value for the parameter FifoQueue. Reason: Modifying queue type is not "
        "supported.", 400)
    plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
    assert refusal(sqs.set_queue_attributes, QueueUrl=plain, Attributes={"FifoQueue": "true"}
                   ) == ("InvalidAttributeName", "Unknown Attribute FifoQueue.", 400)


# 5, 6 ---------------------------------------------------------------------------------


def test_a_fifo_batch_entry_without_a_group_id_is_an_invalid_parameter_value(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    assert refusal(sqs.send_message_batch, QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "a", "MessageGroupId": "g"},
        {"Id": "none", "MessageBody": "b"},
    ]) == ("InvalidParameterValue", "The request must contain the parameter MessageGroupId.",
           400)
    assert bodies(sqs, url) == []


def test_a_fifo_batch_entry_without_deduplication_refuses_the_whole_request(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    assert refusal(sqs.send_message_batch, QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "a", "MessageGroupId": "g", "MessageDeduplicationId": "d"},
        {"Id": "none", "MessageBody": "b", "MessageGroupId": "g"},
    ]) == ("InvalidParameterValue",
           "The queue should either have ContentBasedDeduplication enabled or "
           "MessageDeduplicationId provided explicitly", 400)
    assert bodies(sqs, url) == []


# 7 -----------------------------------------------------------------------------------


def test_a_missing_required_parameter_is_missing_required_parameter_exception_on_json(
    sqs: Any,
) -> None:
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    fifo = sqs.create_queue(QueueName="q.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for call, params, name in [
        (sqs.send_message, {"QueueUrl": url, "MessageBody": ""}, "MessageBody"),
        (sqs.send_message, {"QueueUrl": fifo, "MessageBody": "x"}, "MessageGroupId"),
    ]:
        with pytest.raises(ClientError) as caught:
            call(**params)
        error = caught.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "MissingParameter", f"The request must contain the parameter {name}.")
        if is_json(sqs):  # the JSON __type, as recorded on AWS
            assert error["QueryErrorCode"] == "MissingRequiredParameterException"


# 8 -----------------------------------------------------------------------------------


def test_add_permission_writes_a_2008_10_17_policy_and_an_unknown_label_cannot_be_found(
    sqs: Any,
) -> None:
    url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    sqs.add_permission(QueueUrl=url, Label="partners", AWSAccountIds=["222222222222"],
                       Actions=["SendMessage"])
    policy = json.loads(sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Version"] == "2008-10-17"
    assert policy["Id"] == f"arn:aws:sqs:{REGION}:{TEST_ACCOUNT}:shared/SQSDefaultPolicy"
    assert refusal(sqs.remove_permission, QueueUrl=url, Label="nope") == (
        "InvalidParameterValue",
        "Value nope for parameter Label is invalid. Reason: can't find label.", 400)


# 9 -----------------------------------------------------------------------------------


def _with_trace_header(sqs: Any, value: str) -> None:
    def add(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = value

    sqs.meta.events.register("before-sign.sqs.*", add)


def test_an_x_amzn_trace_id_header_becomes_the_messages_aws_trace_header(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="traced", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"]
    _with_trace_header(sqs, TRACE)
    sent = sqs.send_message(QueueUrl=url, MessageBody="single")
    assert "MD5OfMessageSystemAttributes" not in sent  # the request carried none itself
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "batched"}])
    own = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-own"}}
    sqs.send_message(QueueUrl=url, MessageBody="its own", MessageSystemAttributes=own)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                              MessageSystemAttributeNames=["AWSTraceHeader"])["Messages"]
    assert {m["Body"]: m["Attributes"]["AWSTraceHeader"] for m in got} == {
        "single": TRACE, "batched": TRACE, "its own": "Root=1-own"}


def test_no_trace_header_no_aws_trace_header(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="untraced")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    got = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    assert "AWSTraceHeader" not in got[0]["Attributes"]


# 10 ----------------------------------------------------------------------------------


def test_message_attribute_names_with_non_ascii_letters_are_accepted(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="names")["QueueUrl"]
    attributes = {"attr.1øßä": {"DataType": "String", "StringValue": "Valida"},
                  "Ünïcødé_名前-٣": {"DataType": "Number", "StringValue": "3"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="test", MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(attributes)
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"][0]
    assert got["MessageAttributes"] == attributes


@pytest.mark.parametrize("name", ["Invalid-!-attr", 'Invalid-"-attr', "Invalid-§-attr",
                                  "Invalid-(-attr", "Invalid-?-attr", "Invalid- -attr",
                                  "Invalid-€-attr", "aWs.x", ".x", "x.", "a..b"])
def test_message_attribute_names_aws_refuses_are_still_refused(sqs: Any, name: str) -> None:
    url = sqs.create_queue(QueueName="names")["QueueUrl"]
    code, _, status = refusal(sqs.send_message, QueueUrl=url, MessageBody="test",
                              MessageAttributes={name: {"DataType": "String",
                                                        "StringValue": "v"}})
    assert (code, status) == ("InvalidParameterValue", 400)
    assert bodies(sqs, url) == []


# 11 ----------------------------------------------------------------------------------


def _handle(task_id: str, source_arn: str) -> str:
    text = json.dumps({"taskId": task_id, "sourceArn": source_arn})
    return base64.b64encode(text.encode()).decode()


def test_cancelling_a_move_task_with_a_handle_that_is_none_is_invalid(sqs: Any) -> None:
    for handle in ("foobared", base64.b64encode(b"not a task").decode(), _handle("t", "")):
        assert refusal(sqs.cancel_message_move_task, TaskHandle=handle) == (
            "InvalidParameterValue", "Value for parameter TaskHandle is invalid.", 400)


@pytest.mark.parametrize("arn", [
    f"arn:aws:sqs:{REGION}:{TEST_ACCOUNT}:test-queue-doesnt-exist-123456",
    f"arn:aws:sqs:{REGION}:878966065785:test-queue-doesnt-exist-123456",
])
def test_cancelling_a_move_task_whose_source_does_not_exist_names_the_source_arn(
    sqs: Any, arn: str
) -> None:
    handle = _handle("10f57157-fc38-4da9-a113-4de7e12d05dd", arn)
    assert refusal(sqs.cancel_message_move_task, TaskHandle=handle) == (
        "ResourceNotFoundException",
        "The resource that you specified for the SourceArn parameter doesn't exist.", 404)


def test_cancelling_an_unknown_task_of_an_existing_source_is_task_does_not_exist(
    sqs: Any,
) -> None:
    sqs.create_queue(QueueName="dead")
    arn = f"arn:aws:sqs:{REGION}:{TEST_ACCOUNT}:dead"
    handle = _handle("10f57157-fc38-4da9-a113-4de7e12d05dd", arn)
    assert refusal(sqs.cancel_message_move_task, TaskHandle=handle) == (
        "ResourceNotFoundException", "Task does not exist.", 404)
