"""The query protocol over HTTP: an old-SDK stand-in and plain GETs against the real server."""

from __future__ import annotations

import http.client
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.model
import botocore.parsers
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.e2e.conftest import Server
from tests.query_client import NAMESPACE, query_client, query_model

pytestmark = pytest.mark.e2e

NS = {"q": NAMESPACE}


@pytest.fixture(scope="module")
def old_sdk(
    sealq_server: Server, sealq_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    creds = sealq_server.credentials
    return query_client(
        sealq_endpoint,
        Path(tmp_path_factory.mktemp("query-model")),
        Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=60),
        (creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"]),
    )


@pytest.fixture(scope="module")
def signer(sealq_server: Server) -> Credentials:
    creds = sealq_server.credentials
    return Credentials(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])


def _request(
    endpoint: str, method: str, target: str, body: bytes | None = None,
    signer: Credentials | None = None, headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP request, SigV4-signed with ``signer`` as an old SDK signs it."""
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    headers = dict(headers or {})
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    if signer is not None:
        request = AWSRequest(method=method, url=endpoint + target, data=body or b"",
                             headers=headers)
        request.headers["Host"] = parts.netloc
        SigV4Auth(signer, "sqs", "us-east-1").add_auth(request)
        headers = {k: (v.decode() if isinstance(v, bytes) else v)
                   for k, v in request.headers.items()}
    try:
        conn.request(method, target, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_an_old_sdk_sends_and_receives_over_http(
    old_sdk: Any, queue_name: Callable[[str], str]
) -> None:
    url = old_sdk.create_queue(QueueName=queue_name("query"), tags={"k": "v"})["QueueUrl"]
    attributes = {
        "s": {"DataType": "String", "StringValue": "x"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    sent = old_sdk.send_message(QueueUrl=url, MessageBody="hi\r\n<&>", MessageAttributes=attributes)
    got = old_sdk.receive_message(
        QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    assert [m["Body"] for m in got] == ["hi\r\n<&>"]
    assert got[0]["MessageAttributes"] == attributes
    assert got[0]["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    old_sdk.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    assert old_sdk.list_queue_tags(QueueUrl=url)["Tags"] == {"k": "v"}
    old_sdk.delete_queue(QueueUrl=url)
    with pytest.raises(old_sdk.exceptions.QueueDoesNotExist):
        old_sdk.get_queue_url(QueueName=url.rsplit("/", 1)[1])


def test_get_with_an_action_is_served_as_xml(
    sealq_endpoint: str, old_sdk: Any, queue_name: Callable[[str], str], signer: Credentials
) -> None:
    name = queue_name("get")
    url = old_sdk.create_queue(QueueName=name)["QueueUrl"]
    query = urlencode({"Action": "GetQueueUrl", "QueueName": name, "Version": "2012-11-05"})
    status, headers, body = _request(sealq_endpoint, "GET", f"/?{query}", signer=signer)
    assert status == 200
    assert headers["Content-Type"] == "text/xml"
    root = ET.fromstring(body)
    assert root.find("q:GetQueueUrlResult/q:QueueUrl", NS).text == url  # type: ignore[union-attr]
    path = urlsplit(url).path
    status, _, body = _request(
        sealq_endpoint, "POST", path, b"Action=SendMessage&Version=2012-11-05&MessageBody=p",
        signer=signer,
    )
    assert status == 200, body
    status, _, body = _request(sealq_endpoint, "GET", f"{path}?Action=ReceiveMessage",
                               signer=signer)
    assert status == 200
    assert ET.fromstring(body).find(  # type: ignore[union-attr]
        "q:ReceiveMessageResult/q:Message/q:Body", NS
    ).text == "p"
    old_sdk.delete_queue(QueueUrl=url)


def test_a_missing_queue_is_an_xml_error_with_status_400(
    sealq_endpoint: str, signer: Credentials
) -> None:
    query = urlencode({"Action": "GetQueueUrl", "QueueName": "no-such-queue-here"})
    status, _, body = _request(sealq_endpoint, "GET", f"/?{query}", signer=signer)
    assert status == 400
    root = ET.fromstring(body)
    assert root.find("q:Error/q:Code", NS).text == (  # type: ignore[union-attr]
        "AWS.SimpleQueueService.NonExistentQueue"
    )


def test_an_unsigned_query_request_is_refused_in_xml(sealq_endpoint: str) -> None:
    query = urlencode({"Action": "ListQueues", "Version": "2012-11-05"})
    status, _, body = _request(sealq_endpoint, "GET", f"/?{query}")
    assert status == 403
    assert ET.fromstring(body).find("q:Error/q:Code", NS).text == (  # type: ignore[union-attr]
        "MissingAuthenticationToken"
    )


@pytest.mark.parametrize("path", ["/", "/000000000000/e2e-no-such-queue"])
def test_a_get_without_an_action_is_404_unknown_operation_in_xml(
    sealq_endpoint: str, path: str
) -> None:
    """AWS's front door, recorded: no operation named, so no signature needed either."""
    status, headers, body = _request(sealq_endpoint, "GET", f"{path}?QueueName=x")
    assert status == 404
    assert headers["Content-Type"] == "text/xml"
    assert ET.fromstring(body).tag == "UnknownOperationException"


def test_a_query_client_that_accepts_json_gets_json_over_http(
    sealq_endpoint: str, old_sdk: Any, queue_name: Callable[[str], str], signer: Credentials
) -> None:
    name = queue_name("json")
    url = old_sdk.create_queue(QueueName=name)["QueueUrl"]
    query = urlencode({"Action": "GetQueueUrl", "QueueName": name, "Version": "2012-11-05"})
    status, headers, body = _request(sealq_endpoint, "GET", f"/?{query}", signer=signer,
                                     headers={"Accept": "application/json"})
    assert (status, headers["Content-Type"]) == (200, "application/json")
    assert json.loads(body)["GetQueueUrlResponse"]["GetQueueUrlResult"] == {"QueueUrl": url}
    path = urlsplit(url).path
    status, _, body = _request(sealq_endpoint, "GET", f"{path}?Action=ReceiveMessage",
                               signer=signer)
    assert status == 200
    assert b"<ReceiveMessageResult/>" in body  # an empty receive, as AWS writes it
    old_sdk.delete_queue(QueueUrl=url)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_every_action_of_the_model_is_served_over_http_in_xml(
    sealq_endpoint: str, signer: Credentials, method: str
) -> None:
    """Each operation with no parameters: served (ListQueues) or refused for the first
    missing one, in XML that botocore's query parser reads; no action is unknown."""
    service = botocore.model.ServiceModel(query_model(), "sqs")
    for action in botocore.session.get_session().get_service_model("sqs").operation_names:
        operation = service.operation_model(action)
        form = urlencode({"Action": action, "Version": "2012-11-05"})
        if method == "GET":
            status, headers, body = _request(sealq_endpoint, "GET", f"/?{form}", signer=signer)
        else:
            status, headers, body = _request(sealq_endpoint, "POST", "/", form.encode(),
                                             signer=signer)
        assert headers["Content-Type"] == "text/xml", action
        root = ET.fromstring(body)
        parsed = botocore.parsers.QueryParser().parse(
            {"body": body, "headers": headers, "status_code": status}, operation.output_shape)
        if not operation.input_shape.required_members:
            assert status == 200 and root.tag == f"{{{NAMESPACE}}}{action}Response", action
            continue
        assert status == 400 and root.tag == f"{{{NAMESPACE}}}ErrorResponse", action
        code = root.findtext("q:Error/q:Code", namespaces=NS)
        assert parsed["Error"]["Code"] == code, action
        assert code == "MissingParameter", (action, body)


def test_a_query_receive_of_one_mib_bodies_of_ampersands_answers_under_six_mb(
    old_sdk: Any, queue_name: Callable[[str], str]
) -> None:
    """Each ``&`` is five bytes in XML: five 1 MiB bodies would be a 26 MB answer. The
    answer stays within what a Lambda proxy response may carry; the rest waits, visible."""
    url = old_sdk.create_queue(QueueName=queue_name("amp"))["QueueUrl"]
    for n in range(5):
        old_sdk.send_message(QueueUrl=url, MessageBody="&" * (1_048_576 - 10) + f"{n:010d}")
    sizes: list[int] = []

    def measure(http_response: Any, **_: Any) -> None:
        # The body as the Lambda runtime would write it inside the proxy response.
        sizes.append(len(json.dumps(http_response.text, ensure_ascii=False).encode()))

    old_sdk.meta.events.register("after-call.sqs.ReceiveMessage", measure)
    seen: list[str] = []
    try:
        for _ in range(6):
            got = old_sdk.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            for message in got.get("Messages", []):
                seen.append(message["Body"][-10:])
                old_sdk.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    finally:
        old_sdk.meta.events.unregister("after-call.sqs.ReceiveMessage", measure)
    assert max(sizes) < 6_291_456
    assert sorted(seen) == [f"{n:010d}" for n in range(5)]
    old_sdk.delete_queue(QueueUrl=url)
