"""LeanCalls makes the client's own calls (request, retries, errors, hooks), and its
plain-HTTP transport keeps urllib3's promises (timeouts, errors, connection reuse)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from moto.server import ThreadedMotoServer

from chalicelib import timeouts
from chalicelib.storage.leancalls import LeanCalls, transport_for
from chalicelib.storage.plainhttp import PlainHttp
from tests.harness import _Raw

REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def sqs_client(endpoint: str, attempts: int = 2) -> Any:
    config = timeouts.Budget(connect=0.5, read=1.5, attempts=attempts).config()
    return boto3.session.Session(region_name=REGION).client(
        "sqs", endpoint_url=endpoint, config=config)


def sent_requests(client: Any) -> list[AWSPreparedRequest]:
    """Every request the client's calls put on the wire, in order (observed, not answered)."""
    seen: list[AWSPreparedRequest] = []
    client.meta.events.register("before-send.sqs.*", lambda request, **_: seen.append(request))
    return seen


def answer(status: int, body: dict[str, Any], query_code: str | None = None) -> AWSResponse:
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if query_code:
        headers["x-amzn-query-error"] = f"{query_code};Sender"
    return AWSResponse("http://x/", status, headers, _Raw(json.dumps(body).encode()))


def test_a_lean_call_sends_the_clients_request_and_returns_its_result(moto_url: str) -> None:
    client = sqs_client(moto_url)
    lean = LeanCalls(client)
    url = client.create_queue(QueueName="same")["QueueUrl"]
    seen = sent_requests(client)
    params = {"QueueUrl": url, "MessageBody": "hello \u00e9", "DelaySeconds": 0,
              "MessageAttributes": {"a": {"DataType": "String", "StringValue": "b"}}}
    by_client = client.send_message(**params)
    by_lean = lean.send_message(**params)
    (wire_client, wire_lean) = seen
    assert wire_lean.body == wire_client.body
    assert wire_lean.url == wire_client.url
    for name in ("X-Amz-Target", "Content-Type", "X-Amz-Security-Token"):
        assert wire_lean.headers[name] == wire_client.headers[name]
    # Powertools, once imported, appends its own tag on request-created, which LeanCalls
    # does not emit; the client's own User-Agent is the same.
    assert wire_client.headers["User-Agent"].startswith(wire_lean.headers["User-Agent"])
    signed = wire_lean.headers["Authorization"].decode().split(", ")[1]
    assert signed == wire_client.headers["Authorization"].decode().split(", ")[1]
    assert by_lean.keys() == by_client.keys()
    assert by_lean["MD5OfMessageBody"] == by_client["MD5OfMessageBody"]
    got = lean.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                               MessageSystemAttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in got] == ["hello \u00e9"] * 2
    assert "SentTimestamp" in got[0]["Attributes"]
    lean.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
    assert lean.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_lean_call_raises_the_clients_error(moto_url: str) -> None:
    client = sqs_client(moto_url)
    missing = f"{moto_url}/123456789012/nope"
    with pytest.raises(ClientError) as by_client:
        client.get_queue_attributes(QueueUrl=missing)
    with pytest.raises(ClientError) as by_lean:
        LeanCalls(client).get_queue_attributes(QueueUrl=missing)
    assert type(by_lean.value) is type(by_client.value)
    assert by_lean.value.response["Error"] == by_client.value.response["Error"]
    assert by_lean.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_throttled_lean_call_is_retried_as_the_client_would(moto_url: str) -> None:
    client = sqs_client(moto_url, attempts=2)
    url = client.create_queue(QueueName="throttled")["QueueUrl"]
    throttle = {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "slow down"}
    attempts: list[int] = []

    def throttled_once(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        return answer(400, throttle, "RequestThrottled") if len(attempts) == 1 else None

    client.meta.events.register("before-send.sqs.SendMessage", throttled_once)
    out = LeanCalls(client).send_message(QueueUrl=url, MessageBody="x")
    assert len(attempts) == 2 and out["ResponseMetadata"]["RetryAttempts"] == 1

    def always(request: Any, **_: Any) -> AWSResponse:
        attempts.append(1)
        return answer(400, throttle, "RequestThrottled")

    client.meta.events.unregister("before-send.sqs.SendMessage", throttled_once)
    client.meta.events.register("before-send.sqs.SendMessage", always)
    attempts.clear()
    with pytest.raises(ClientError) as err:
        LeanCalls(client).send_message(QueueUrl=url, MessageBody="x")
    assert len(attempts) == 2  # the client's configured attempts, no more
    assert err.value.response["Error"]["Code"] == "RequestThrottled"


def test_a_before_call_hook_that_raises_stops_the_call_before_the_wire(moto_url: str) -> None:
    client = sqs_client(moto_url)
    seen = sent_requests(client)

    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": ""}}, "SendMessage")

    client.meta.events.register("before-call.sqs.SendMessage", fail)
    with pytest.raises(ClientError):
        LeanCalls(client).send_message(QueueUrl=f"{moto_url}/123456789012/q", MessageBody="x")
    assert seen == []


def test_plain_http_serves_local_endpoints_and_the_clients_session_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = Config(connect_timeout=0.5, read_timeout=1.5)
    session = object()
    assert isinstance(transport_for(session, "http://127.0.0.1:5000", config), PlainHttp)
    assert transport_for(session, "https://sqs.us-east-1.amazonaws.com", config) is session
    assert transport_for(session, "http://127.0.0.1:5000",
                         Config(proxies={"http": "http://proxy:3128"})) is session
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert transport_for(session, "http://sqs.local:5000", config) is session


# -- the plain-HTTP transport -----------------------------------------------------------


class _KeepAlive(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 0.2  # an idle connection is closed by the server after this long

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.server.close_after:  # type: ignore[attr-defined]
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, close_after: bool) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAlive)
        self.close_after = close_after
        self.connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        self.connections += 1
        return super().get_request()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[_Server] = []

    def start(close_after: bool = False) -> _Server:
        server = _Server(close_after)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def post(url: str) -> AWSPreparedRequest:
    from botocore.awsrequest import AWSRequest

    return AWSRequest(method="POST", url=url + "/", data=b"{}", headers={}).prepare()


def test_plain_http_reuses_a_kept_alive_connection_and_replaces_a_closed_one(serve: Any) -> None:
    server = serve()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    transport = PlainHttp(url, connect_timeout=0.5, read_timeout=1.5)
    for _ in range(3):
        response = transport.send(post(url))
        assert response.status_code == 200 and response.content == b'{"ok":true}'
    assert server.connections == 1
    time.sleep(_KeepAlive.timeout * 3)  # the server drops the idle connection
    assert transport.send(post(url)).status_code == 200  # on a new one, no error
    assert server.connections == 2


def test_plain_http_does_not_reuse_a_connection_the_server_closes(serve: Any) -> None:
    server = serve(close_after=True)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    transport = PlainHttp(url, connect_timeout=0.5, read_timeout=1.5)
    for _ in range(3):
        assert transport.send(post(url)).status_code == 200
    assert server.connections == 3


def test_plain_http_fails_as_botocore_does(serve: Any) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = f"http://127.0.0.1:{port}"
    with pytest.raises(EndpointConnectionError):
        PlainHttp(refused, connect_timeout=0.5, read_timeout=0.5).send(post(refused))
    with socket.socket() as silent:  # accepts (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(ReadTimeoutError):
            PlainHttp(url, connect_timeout=0.5, read_timeout=0.3).send(post(url))
        assert time.monotonic() - began < 2


def test_a_backing_store_whose_sqs_is_gone_fails_transiently_not_with_a_bug() -> None:
    """The local moto stopped: the store's error is the retryable kind (the client gets
    a throttling answer it retries), after the client's configured attempts."""
    from chalicelib.storage.backing import SqsMessageStore
    from chalicelib.storage.errors import StorageError, is_transient
    from chalicelib.storage.ports import Outgoing

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{unused.getsockname()[1]}"
    client = sqs_client(gone, attempts=2)
    tries: list[int] = []
    client.meta.events.register("needs-retry.sqs.SendMessage", lambda **_: tries.append(1))
    store = SqsMessageStore(client)
    with pytest.raises(StorageError) as err:
        store.send_batch(f"{gone}/123456789012/q", [Outgoing(entry_id="1", body="x")])
    assert is_transient(err.value)
    assert len(tries) == 2
