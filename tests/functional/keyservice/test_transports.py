"""Transports and entry points: the same key-service answers in-process and over Lambda."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import FakeClock
from chalicelib.handler import container
from chalicelib.keyservice import DataKey, KeyServiceClient, KeyServiceError
from chalicelib.keyservice import process as key_service_process
from chalicelib.keyservice.transport import InProcessTransport, LambdaTransport
from chalicelib.settings import SettingsError
from tests.harness import REGION, SESSION
from tests.key_services import CMK, CONTEXT, QUEUE, make_container

FUNCTION = "sealq-key-service"


class RecordingCore:
    """A stand-in core that keeps what it was sent and answers a canned reply."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(payload)
        return self.answer


class CannedTransport:
    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.answer


def payload_body(answer: object) -> StreamingBody:
    raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


def lambda_client() -> Any:
    return boto3.client("lambda", region_name=REGION)


def expected_invoke(payload: dict[str, Any]) -> dict[str, Any]:
    return {"FunctionName": FUNCTION, "InvocationType": "RequestResponse",
            "Payload": json.dumps(payload).encode()}


def data_key_kwargs() -> dict[str, Any]:
    return {"queue_arn": QUEUE, "cmk": CMK, "context": CONTEXT, "reuse_period": 300}


# -- in process ------------------------------------------------------------------------


def test_in_process_client_yields_the_cores_keys(stack: None, clock: FakeClock) -> None:
    box = make_container(clock)
    client = KeyServiceClient(InProcessTransport(box.core))

    key = client.data_key(**data_key_kwargs())

    assert key == box.core.data_key(**data_key_kwargs())
    assert client.decrypt_key(
        encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=CONTEXT
    ) == key.plaintext
    assert client.service_secret("receipts") == box.core.service_secret("receipts")
    assert (box.generates, box.decrypts) == (2, 0)


def test_in_process_transport_round_trips_through_json() -> None:
    core = RecordingCore({"ok": {"pair": (1, 2)}})
    request: dict[str, Any] = {"op": "data_key", "context": {"k": "v"}, "pair": (3, 4)}

    answer = InProcessTransport(core).call(request)

    assert core.requests == [{"op": "data_key", "context": {"k": "v"}, "pair": [3, 4]}]
    assert core.requests[0]["context"] is not request["context"]
    assert answer == {"ok": {"pair": [1, 2]}}
    assert answer is not core.answer


def test_client_raises_the_services_error_code(stack: None, clock: FakeClock) -> None:
    box = make_container(clock)
    client = KeyServiceClient(InProcessTransport(box.core))
    key = client.data_key(**data_key_kwargs())

    with pytest.raises(KeyServiceError) as raised:
        client.decrypt_key(encrypted=key.encrypted, cmk_arn=key.cmk_arn,
                           context=CONTEXT | {"sealq:queue": "elsewhere"})
    assert raised.value.code == "InvalidCiphertext"


@pytest.mark.parametrize("answer", [
    {},
    {"ok": "yes"},
    {"ok": {"plaintext": "***", "encrypted": "AA==", "cmk_arn": "arn", "deadline": 1.0}},
    {"ok": {"plaintext": "AA==", "encrypted": "AA==", "cmk_arn": "arn", "deadline": "soon"}},
    {"ok": {"plaintext": "AA==", "encrypted": "AA==", "cmk_arn": None, "deadline": 1.0}},
])
def test_client_rejects_malformed_answers(answer: dict[str, Any]) -> None:
    with pytest.raises(KeyServiceError) as raised:
        KeyServiceClient(CannedTransport(answer)).data_key(**data_key_kwargs())
    assert raised.value.code == "InternalFailure"


# -- over Lambda -----------------------------------------------------------------------


def test_lambda_transport_invokes_the_function_synchronously() -> None:
    client = lambda_client()
    wire = {"ok": {"plaintext": "AQID", "encrypted": "BAUG", "cmk_arn": "arn:k",
                   "deadline": 12.5}}
    request = {"op": "data_key", "queue_arn": QUEUE, "cmk": CMK, "context": CONTEXT,
               "reuse_period": 300}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": payload_body(wire)},
                          expected_invoke(request))
        key = KeyServiceClient(LambdaTransport(FUNCTION, client)).data_key(**data_key_kwargs())
        stub.assert_no_pending_responses()
    assert key == DataKey(b"\x01\x02\x03", b"\x04\x05\x06", "arn:k", 12.5)


def test_lambda_transport_passes_service_errors_through() -> None:
    client = lambda_client()
    wire = {"error": {"code": "KmsDisabled", "message": "The KMS key is disabled."}}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": payload_body(wire)})
        with pytest.raises(KeyServiceError) as raised:
            KeyServiceClient(LambdaTransport(FUNCTION, client)).service_secret("receipts")
    assert (raised.value.code, raised.value.message) == ("KmsDisabled", "The KMS key is disabled.")


@pytest.mark.parametrize("response", [
    {"StatusCode": 200, "Payload": payload_body(b"not json")},
    {"StatusCode": 200, "Payload": payload_body([1, 2])},
    {"StatusCode": 200, "Payload": payload_body({"neither": 1})},
])
def test_lambda_failures_become_internal_failure(response: dict[str, Any]) -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_response("invoke", response)
        answer = LambdaTransport(FUNCTION, client).call({"op": "service_secret", "name": "x"})
    assert answer["error"]["code"] == "InternalFailure"
    assert "boom" not in answer["error"]["message"]


def test_a_throttled_lambda_invoke_is_a_retryable_unavailable_error() -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
        answer = LambdaTransport(FUNCTION, client).call({"op": "service_secret", "name": "x"})
    assert answer["error"]["code"] == "ServiceUnavailable"


def test_a_lambda_invoke_refused_for_permissions_is_internal_failure() -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_client_error("invoke", "AccessDeniedException", "no", 403)
        answer = LambdaTransport(FUNCTION, client).call({"op": "service_secret", "name": "x"})
    assert answer["error"]["code"] == "InternalFailure"


def test_a_key_service_function_error_such_as_a_timeout_is_retryable() -> None:
    client = lambda_client()
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled",
                                     "Payload": payload_body({"errorMessage": "timed out"})})
        answer = LambdaTransport(FUNCTION, client).call({"op": "service_secret", "name": "x"})
    assert answer["error"]["code"] == "ServiceUnavailable"


# -- entry points of the composition root -------------------------------------------------


def clients() -> Clients:
    conf = settings.get()
    return Clients(SESSION, conf.region, conf.aws_endpoint)


def test_lambda_entry_point_serves_the_wire_format(stack: None) -> None:
    answer = container.serve_key_service({"op": "service_secret", "name": "receipts"})
    again = container.serve_key_service({"op": "service_secret", "name": "receipts"})
    assert answer == again
    assert container.serve_key_service({"op": "nope"})["error"]["code"] == "InternalFailure"


def test_the_key_service_is_in_process_without_a_function(stack: None) -> None:
    client = key_service_process.client(settings.get(), clients())
    key = client.data_key(**data_key_kwargs())
    assert container.serve_key_service(
        {"op": "data_key", "queue_arn": QUEUE, "cmk": CMK, "context": CONTEXT,
         "reuse_period": 300}
    )["ok"]["encrypted"] == base64.b64encode(key.encrypted).decode()


def test_the_handler_invokes_the_configured_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEALQ_KEY_SERVICE_FUNCTION", FUNCTION)
    settings.reset()
    wire = {"ok": {"plaintext": "AQID"}}
    built = clients()
    with Stubber(built.get("key_service")) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": payload_body(wire)},
                          expected_invoke({"op": "service_secret", "name": "receipts"}))
        client = key_service_process.client(settings.get(), built)
        assert client.service_secret("receipts") == b"\x01\x02\x03"


def test_in_lambda_a_handler_without_a_key_service_function_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "sealq-dev")
    settings.reset()
    with pytest.raises(SettingsError, match="SEALQ_KEY_SERVICE_FUNCTION"):
        key_service_process.client(settings.get(), clients())
    response = container.serve_http({}, b"{}", {}, None)
    assert response.status == 500
    assert "SEALQ_KEY_SERVICE_FUNCTION" in caplog.text


def test_lambda_entry_point_answers_even_when_settings_are_bad(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEALQ_KEY_SERVICE_CACHE_SIZE", "0")
    settings.reset()
    answer = container.serve_key_service({"op": "service_secret", "name": "receipts"})
    assert answer["error"]["code"] == "InternalFailure"


def test_reset_starts_a_fresh_core_that_reuses_the_stored_key(stack: None) -> None:
    first = container.core().data_key(**data_key_kwargs())
    container.reset()
    second = container.core().data_key(**data_key_kwargs())
    assert second == first
