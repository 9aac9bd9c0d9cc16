"""The local stack without sealq's routes: backend choice, provisioning, Chalice plumbing.

A stub Chalice app stands in for app.py. It answers like SQS's JSON protocol does,
so these tests also pin down what the real routes can rely on under
``chalice local``: raw bytes bodies, lower-cased headers, path parameters, and
error headers that reach botocore.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice import Chalice, Response
from moto.server import ThreadedMotoServer

from tests.harness import ROOT
from tools.local import credentials as localcreds
from tools.local import devserver, provision, stats
from tools.local import endpoint as local_endpoint
from tools.local.httpserver import Limits

SQS_CONTENT_TYPES = ["application/x-amz-json-1.0", "application/x-www-form-urlencoded"]
STUB_SPEC = "tests.functional.tools.test_devserver:stub_app"

stub_app = Chalice(app_name="sealq-stub")


def _json_response(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
    # "Content-Type" exactly: chalice local adds its own default unless this key is used.
    return Response(
        body=json.dumps(body),
        status_code=status,
        headers={"Content-Type": "application/x-amz-json-1.0", **headers},
    )


@stub_app.route("/", methods=["POST"], content_types=SQS_CONTENT_TYPES)
def _root() -> Response:
    request = stub_app.current_request
    assert request is not None
    payload = json.loads(request.raw_body)
    if (
        request.headers.get("x-amz-target") == "AmazonSQS.GetQueueUrl"
        and payload.get("QueueName") == "orders"
    ):
        host = request.headers["host"]
        return _json_response({"QueueUrl": f"http://{host}/000000000000/orders"})
    return _json_response(
        {
            "__type": "com.amazonaws.sqs#QueueDoesNotExist",
            "message": "The specified queue does not exist.",
        },
        status=400,
        **{"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
    )


@stub_app.route("/{account}/{queue}", methods=["POST"], content_types=SQS_CONTENT_TYPES)
def _queue(account: str, queue: str) -> Response:
    request = stub_app.current_request
    assert request is not None
    raw = request.raw_body
    return _json_response(
        {
            "account": account,
            "queue": queue,
            "body_is_bytes": isinstance(raw, bytes),
            "body": raw.decode() if isinstance(raw, bytes) else raw,
            "headers": dict(request.headers),
            "thread": threading.current_thread().name,
        }
    )


def _post(url: str, path: str, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _sqs(endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def local_stack() -> Iterator[devserver.LocalStack]:
    saved = dict(os.environ)
    os.environ.pop("SEALQ_AWS_ENDPOINT", None)
    try:
        with devserver.start(port=0, app=stub_app, limits=Limits(body_timeout=0.5)) as stack:
            yield stack
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def external_moto() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends are process-wide: forget what earlier tests (or stacks) created.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    try:
        yield url
    finally:
        server.stop()


# Backend choice and environment


def test_unset_or_empty_endpoint_means_embedded_moto() -> None:
    assert devserver.backend_of({}) is devserver.Backend.EMBEDDED
    assert devserver.backend_of({"SEALQ_AWS_ENDPOINT": " "}) is devserver.Backend.EMBEDDED
    assert devserver.backend_of({"SEALQ_AWS_ENDPOINT": "aws"}) is devserver.Backend.AWS
    assert (
        devserver.backend_of({"SEALQ_AWS_ENDPOINT": "http://localhost:4566"})
        is devserver.Backend.ENDPOINT
    )


def test_embedded_moto_always_gets_dummy_credentials_and_a_region() -> None:
    env = {"AWS_PROFILE": "prod", "AWS_ACCESS_KEY_ID": "AKIAREAL", "AWS_SESSION_TOKEN": "tok"}
    previous = devserver.configure_environment(env, "http://127.0.0.1:5000")
    assert env == {
        "SEALQ_AWS_ENDPOINT": "http://127.0.0.1:5000",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    assert previous["AWS_PROFILE"] == "prod"
    assert previous["AWS_SECRET_ACCESS_KEY"] is None


def test_external_endpoint_keeps_configured_credentials_and_region() -> None:
    env = {
        "SEALQ_AWS_ENDPOINT": "http://localhost:4566",
        "AWS_ACCESS_KEY_ID": "000000000000",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "eu-west-1",
    }
    before = dict(env)
    assert devserver.configure_environment(env) == {}
    assert env == before


def test_external_endpoint_without_credentials_gets_dummy_ones() -> None:
    env = {"SEALQ_AWS_ENDPOINT": "http://localhost:4566"}
    devserver.configure_environment(env)
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_real_aws_leaves_the_credential_chain_alone() -> None:
    env = {"SEALQ_AWS_ENDPOINT": "aws", "AWS_PROFILE": "prod"}
    assert devserver.configure_environment(env) == {}
    assert env == {"SEALQ_AWS_ENDPOINT": "aws", "AWS_PROFILE": "prod"}


# Provisioning


def test_provisioning_against_an_external_endpoint_creates_only_what_is_missing(
    external_moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALQ_AWS_ENDPOINT", external_moto)
    ddb = boto3.client("dynamodb", endpoint_url=external_moto, region_name="us-east-1")
    ddb.create_table(TableName="sealq-keys", **provision.KEYS_TABLE_SCHEMA)

    with devserver.start(port=0, app=stub_app) as first:
        assert first.backend is devserver.Backend.ENDPOINT
        assert first.aws_endpoint == external_moto
        assert first.created == [
            "table sealq-queues",
            "table sealq-accounts",
            "bucket sealq-payloads",
            "key alias/sealq-default",
        ]
    with devserver.start(port=0, app=stub_app) as second:
        assert second.created == []
    assert os.environ["SEALQ_AWS_ENDPOINT"] == external_moto


def test_the_local_access_key_is_saved_as_a_profile_and_kept_across_restarts() -> None:
    path = Path(os.environ["SEALQ_LOCAL_DIR"]) / "credentials"
    with devserver.start(port=0, app=stub_app) as first:
        key = first.local_key
    assert key is not None and key.credentials_file == path
    assert localcreds.read_profile(path) == (key.access_key_id, key.secret_access_key)
    assert path.stat().st_mode & 0o077 == 0
    with devserver.start(port=0, app=stub_app) as second:  # a fresh embedded moto
        assert second.local_key == key
        ddb = boto3.client("dynamodb", endpoint_url=second.aws_endpoint, region_name="us-east-1")
        item = ddb.get_item(TableName="sealq-accounts",
                            Key={"id": {"S": f"key#{key.access_key_id}"}})["Item"]
        assert item["account"]["S"] == "000000000000" and item["status"]["S"] == "Active"
        assert key.secret_access_key.encode() not in bytes(item["secret"]["B"])


def test_stop_restores_the_environment_it_changed() -> None:
    before = dict(os.environ)
    os.environ.pop("SEALQ_AWS_ENDPOINT", None)
    expected = dict(os.environ)
    try:
        with devserver.start(port=0, app=stub_app) as stack:
            assert os.environ["SEALQ_AWS_ENDPOINT"] == stack.aws_endpoint
            assert "AWS_SESSION_TOKEN" not in os.environ
        assert dict(os.environ) == expected
    finally:
        os.environ.clear()
        os.environ.update(before)


# What routes get under chalice local


def test_x_amz_json_requests_reach_the_queue_route_with_raw_bytes_and_path_params(
    local_stack: devserver.LocalStack,
) -> None:
    body = json.dumps({"QueueUrl": "x", "MessageBody": "h\u00e9llo"}).encode()
    status, echoed = _post(
        local_stack.url, "/000000000000/orders", body, "application/x-amz-json-1.0"
    )
    assert status == 200
    assert echoed["account"] == "000000000000"
    assert echoed["queue"] == "orders"
    assert echoed["body_is_bytes"] is True
    assert echoed["body"].encode() == body
    assert echoed["headers"]["content-type"] == "application/x-amz-json-1.0"


def test_form_encoded_requests_reach_the_route(local_stack: devserver.LocalStack) -> None:
    status, echoed = _post(
        local_stack.url,
        "/000000000000/orders",
        b"Action=SendMessage&MessageBody=x",
        "application/x-www-form-urlencoded",
    )
    assert status == 200
    assert echoed["body"] == "Action=SendMessage&MessageBody=x"


def test_other_content_types_get_an_sqs_error(local_stack: devserver.LocalStack) -> None:
    status, headers, body, _ = _exchange(
        local_stack.url, _request("POST", "/", b"{}", content_type="application/json")
    )
    _assert_sqs_error(status, headers, body, 415, "UnknownOperationException", "InvalidAction")


def test_botocore_reads_responses_and_modeled_errors_through_chalice_local(
    local_stack: devserver.LocalStack,
) -> None:
    sqs = _sqs(local_stack.url)
    url = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
    assert url == f"{local_stack.url}/000000000000/orders"
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_url(QueueName="missing")


def test_each_request_is_served_on_its_own_thread(local_stack: devserver.LocalStack) -> None:
    threads = {
        _post(local_stack.url, "/000000000000/q", b"{}", "application/x-amz-json-1.0")[1][
            "thread"
        ]
        for _ in range(3)
    }
    assert "MainThread" not in threads
    assert len(threads) == 3


# Process behaviour


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_invalid_port_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEALQ_PORT", "ninety")
    assert devserver.run(["--app", STUB_SPEC]) == 2


def test_port_in_use_fails_cleanly_and_stops_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEALQ_AWS_ENDPOINT", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert devserver.run(["--port", str(port), "--app", STUB_SPEC]) == 1
    assert "SEALQ_AWS_ENDPOINT" not in os.environ


def _start_process(
    env: dict[str, str], stderr_path: Path
) -> tuple[subprocess.Popen[str], str, str]:
    """Start the command; return it, its URL and its stdout up to the ``listening on`` line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.local.devserver", "--app", STUB_SPEC],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr_path.open("w"),
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].split()[0]
            return proc, url, "".join(lines)
    proc.kill()
    proc.wait()
    raise AssertionError(f"no 'listening on' line: {lines!r}\n{stderr_path.read_text()}")


def _process_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEALQ_", "AWS_")) and k != "PYTHONPATH"
    }
    env["SEALQ_LOCAL_DIR"] = os.environ["SEALQ_LOCAL_DIR"]  # the test's own, not the project's
    env.update(extra)
    return env


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_command_serves_then_stops_cleanly_on_a_signal(
    signum: signal.Signals, tmp_path: Path
) -> None:
    port = _free_port()
    stderr_path = tmp_path / "stderr"
    proc, url, _ = _start_process(_process_env(SEALQ_PORT=str(port)), stderr_path)
    try:
        assert url == f"http://127.0.0.1:{port}"
        status, _ = _post(url, "/000000000000/q", b"{}", "application/x-amz-json-1.0")
        assert status == 200
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "listening on" not in out  # the line was printed exactly once, before
    assert "Traceback" not in stderr_path.read_text()


def test_the_command_never_logs_credentials(external_moto: str, tmp_path: Path) -> None:
    key_id, secret = "AKIASEALQNEVERLOGGED", "sealq-secret-never-logged"
    env = _process_env(
        SEALQ_PORT="0",
        SEALQ_AWS_ENDPOINT=external_moto,
        SEALQ_LOG_LEVEL="DEBUG",
        AWS_ACCESS_KEY_ID=key_id,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION="us-east-1",
    )
    stderr_path = tmp_path / "stderr"
    proc, url, head = _start_process(env, stderr_path)
    try:
        _post(url, "/000000000000/q", b"{}", "application/x-amz-json-1.0")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    everything = head + out + stderr_path.read_text()
    assert "sealq: created" in everything
    assert key_id not in everything
    assert secret not in everything
    saved = localcreds.read_profile(Path(os.environ["SEALQ_LOCAL_DIR"]) / "credentials")
    assert saved is not None and saved[1] not in everything  # the local secret: profile only


def test_without_a_local_dir_the_stack_keeps_its_state_in_dot_sealq_of_the_project(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the README says (``$PWD/.sealq/credentials``), and where ``make admin`` and
    ``make stats`` look: the repository's ``.sealq/``, next to app.py and .chalice/."""
    monkeypatch.delenv("SEALQ_LOCAL_DIR")
    assert devserver.PROJECT_DIR == ROOT
    assert (devserver.PROJECT_DIR / "app.py").is_file()
    assert (devserver.PROJECT_DIR / ".chalice" / "config.json").is_file()
    expected = ROOT / ".sealq"
    assert devserver._state_dir() == stats.state_dir() == local_endpoint.state_dir() == expected


def _admin(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m tools.admin ...`` as ``make admin`` runs it, with no AWS or sealq
    variable but the test's own state folder."""
    return subprocess.run([sys.executable, "-m", "tools.admin", *args], cwd=ROOT,
                          env=_process_env(), capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_command_names_its_endpoint_while_it_serves_and_removes_it_when_it_stops(
    tmp_path: Path,
) -> None:
    path = Path(os.environ["SEALQ_LOCAL_DIR"]) / local_endpoint.ENDPOINT_FILE
    proc, url, _ = _start_process(_process_env(SEALQ_PORT="0"), tmp_path / "stderr")
    try:
        found = local_endpoint.read(path)
        assert found is not None
        assert (found.url, found.backend, found.pid) == (url, "embedded moto", proc.pid)
        assert found.aws_endpoint and found.aws_endpoint.startswith("http://127.0.0.1:")
        assert found.region == "us-east-1" and found.dummy_credentials
        assert found.settings["SEALQ_ACCOUNTS_TABLE"] == "sealq-accounts"
        assert path.stat().st_mode & 0o077 == 0
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert not path.exists()


def test_make_admin_after_the_server_was_killed_says_so_in_one_line(tmp_path: Path) -> None:
    """A server that could not clean up (SIGKILL) leaves its file: ``make admin`` then
    says the stack is not running and how to start it, never a traceback or a
    credentials error from some other AWS."""
    path = Path(os.environ["SEALQ_LOCAL_DIR"]) / local_endpoint.ENDPOINT_FILE
    proc, url, _ = _start_process(_process_env(SEALQ_PORT="0"), tmp_path / "stderr")
    proc.kill()
    proc.wait()
    assert path.exists()

    done = _admin("list-accounts")

    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    error = json.loads(line)
    assert error["error"] == "NoLocalStack"
    assert url in error["message"] and "make run" in error["message"]


def test_a_damaged_endpoint_file_gets_a_one_line_error_too() -> None:
    path = Path(os.environ["SEALQ_LOCAL_DIR"]) / local_endpoint.ENDPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")

    done = _admin("list-accounts")

    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert json.loads(line)["error"] == "NoLocalStack"
    assert str(path) in json.loads(line)["message"]


# The HTTP layer: API Gateway's limits and SQS-shaped errors for what no route serves


def _request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    content_type: str | None = "application/x-amz-json-1.0",
    headers: dict[str, str] | None = None,
    length: bool = True,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _exchange(url: str, data: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """Send raw bytes, read one response: status, headers, body, whether the server closed."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        # Only a server that announced the close is waited for.
        closed = response.will_close and sock.recv(1) == b""
    return response.status, headers, body, closed


def _assert_sqs_error(
    status: int, headers: dict[str, str], body: bytes, expected: int, code: str, legacy: str
) -> None:
    assert status == expected
    payload = json.loads(body)
    assert payload["__type"] == f"com.amazon.coral.service#{code}"
    assert payload["message"]
    assert headers["x-amzn-query-error"] == f"{legacy};Sender"
    assert headers["content-type"] == "application/x-amz-json-1.0"


def test_a_body_over_api_gateways_limit_is_refused_before_it_is_read(
    local_stack: devserver.LocalStack,
) -> None:
    # Only the headers are sent: the answer cannot have waited for 200 MB.
    head = _request("POST", "/", headers={"X-Amz-Target": "AmazonSQS.ListQueues"}, length=False)
    head = head.replace(b"\r\n\r\n", b"\r\nContent-Length: 200000000\r\n\r\n")
    status, headers, body, closed = _exchange(local_stack.url, head)
    _assert_sqs_error(
        status, headers, body, 413, "RequestEntityTooLargeException", "RequestEntityTooLarge"
    )
    assert closed


def test_expect_continue_over_the_limit_gets_413_instead_of_100(
    local_stack: devserver.LocalStack,
) -> None:
    head = _request("POST", "/", headers={"Expect": "100-continue"}, length=False)
    head = head.replace(b"\r\n\r\n", b"\r\nContent-Length: 10485761\r\n\r\n")
    status, headers, body, closed = _exchange(local_stack.url, head)
    assert status == 413
    assert closed


def test_expect_continue_within_the_limit_gets_100_then_the_answer(
    local_stack: devserver.LocalStack,
) -> None:
    body = b'{"x": 1}'
    head = _request("POST", "/000000000000/q", headers={"Expect": "100-continue"}, length=False)
    head = head.replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    host, port = local_stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200
        assert json.loads(response.read())["body"] == body.decode()


def test_a_body_at_the_limit_is_still_served(local_stack: devserver.LocalStack) -> None:
    body = json.dumps({"pad": "x" * (10 * 1024 * 1024 - 20)}).encode()
    assert len(body) <= 10 * 1024 * 1024
    data = _request("POST", "/000000000000/q", body, headers={"Connection": "close"})
    status, _, echoed, _ = _exchange(local_stack.url, data)
    assert status == 200
    assert len(json.loads(echoed)["body"]) == len(body)


def test_a_body_that_stalls_times_out_and_frees_the_connection(
    local_stack: devserver.LocalStack,
) -> None:
    partial = _request("POST", "/", b"{}", length=False).replace(
        b"\r\n\r\n", b"\r\nContent-Length: 100\r\n\r\n"
    )
    status, headers, body, closed = _exchange(local_stack.url, partial)
    _assert_sqs_error(status, headers, body, 408, "RequestTimeoutException", "RequestTimeout")
    assert closed


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "0x10", "12 34", "\u0661"])
def test_a_malformed_content_length_gets_400(
    local_stack: devserver.LocalStack, value: str
) -> None:
    data = _request("POST", "/", b"{}", length=False).replace(
        b"\r\n\r\n", f"\r\nContent-Length: {value}\r\n\r\n".encode()
    )
    status, headers, body, closed = _exchange(local_stack.url, data + b"{}")
    _assert_sqs_error(status, headers, body, 400, "BadRequestException", "BadRequest")
    assert closed


def test_conflicting_content_lengths_get_400(local_stack: devserver.LocalStack) -> None:
    data = _request("POST", "/", b"{}", headers={"Content-Length": "3"})
    status, headers, body, _ = _exchange(local_stack.url, data)
    _assert_sqs_error(status, headers, body, 400, "BadRequestException", "BadRequest")


def test_a_chunked_body_is_refused_rather_than_misread(local_stack: devserver.LocalStack) -> None:
    data = _request(
        "POST", "/", headers={"Transfer-Encoding": "chunked"}, length=False
    ) + b"2\r\n{}\r\n0\r\n\r\n"
    status, headers, body, closed = _exchange(local_stack.url, data)
    _assert_sqs_error(status, headers, body, 411, "BadRequestException", "BadRequest")
    assert closed


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
def test_a_wrong_method_gets_an_sqs_error_not_chalices_405(
    local_stack: devserver.LocalStack, method: str
) -> None:
    status, headers, body, _ = _exchange(local_stack.url, _request(method, "/"))
    _assert_sqs_error(status, headers, body, 405, "UnknownOperationException", "InvalidAction")


def test_head_gets_the_error_status_without_a_body(local_stack: devserver.LocalStack) -> None:
    host, port = local_stack.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("HEAD", "/")
        response = conn.getresponse()
        assert response.status == 405
        assert response.read() == b""
        assert response.getheader("x-amzn-query-error") == "InvalidAction;Sender"
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/000000000000", "/a/b/c", "/favicon.ico", "/x/y/z/"])
def test_an_unknown_path_gets_an_sqs_error_not_chalices_403(
    local_stack: devserver.LocalStack, path: str
) -> None:
    status, headers, body, _ = _exchange(local_stack.url, _request("POST", path, b"{}"))
    _assert_sqs_error(status, headers, body, 404, "UnknownOperationException", "InvalidAction")


def test_a_malformed_request_line_gets_an_sqs_error(local_stack: devserver.LocalStack) -> None:
    status, headers, body, closed = _exchange(local_stack.url, b"POST / HTTP/1.1 extra\r\n\r\n")
    assert 400 <= status < 500
    assert json.loads(body)["__type"].startswith("com.amazon.coral.service#")
    assert closed


def test_botocore_raises_on_refusals_with_the_legacy_code(
    local_stack: devserver.LocalStack,
) -> None:
    from botocore.exceptions import ClientError

    sqs = _sqs(local_stack.url + "/a/b/c")  # a path no route serves
    with pytest.raises(ClientError) as caught:
        sqs.list_queues()
    assert caught.value.response["Error"]["Code"] == "InvalidAction"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_many_requests_share_one_keep_alive_connection(local_stack: devserver.LocalStack) -> None:
    host, port = local_stack.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        threads = set()
        for _ in range(5):
            conn.request(
                "POST",
                "/000000000000/q",
                body=b"{}",
                headers={"Content-Type": "application/x-amz-json-1.0"},
            )
            response = conn.getresponse()
            assert response.status == 200
            threads.add(json.loads(response.read())["thread"])
        assert len(threads) == 1  # one connection, one thread: it was kept alive
    finally:
        conn.close()
