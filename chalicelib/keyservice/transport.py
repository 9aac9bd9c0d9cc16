"""How a message handler reaches the key service: Lambda Invoke, or in-process.

Both transports carry the JSON wire format of :mod:`chalicelib.keyservice.api`, so
the in-process one round-trips through JSON too: whatever works locally works
over Lambda. :class:`KeyServiceClient` turns the wire format back into the
``KeyService`` protocol and raises :class:`KeyServiceError` for ``{"error": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from chalicelib.keyservice.api import UNAVAILABLE, DataKey, KeyServiceError
from chalicelib.observability.logs import current
from chalicelib.observability.metrics import (
    KEY_SERVICE_CALLS,
    KEY_SERVICE_LATENCY,
    NO_METRICS,
    Metrics,
)
from chalicelib.storage import functions
from chalicelib.storage.errors import StorageError, Transient

log = logging.getLogger("sealq.keyservice.transport")

INTERNAL_FAILURE = "InternalFailure"
UNREACHABLE_MESSAGE = "The key service could not be reached."
MALFORMED_MESSAGE = "The key service returned a malformed response."


class Handler(Protocol):
    def handle(self, payload: dict[str, Any]) -> dict[str, Any]: ...


class Transport(Protocol):
    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the answer is ``{"ok": ...}`` or ``{"error": ...}``, never raises."""
        ...


def _failure(message: str, code: str = INTERNAL_FAILURE) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class InProcessTransport:
    """Calls the core in this process, with a real JSON round trip both ways."""

    def __init__(self, core: Handler) -> None:
        self._core = core

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = json.loads(json.dumps(payload))
        answer: dict[str, Any] = json.loads(json.dumps(self._core.handle(request)))
        return answer


class LambdaTransport:
    """Calls the key-service Lambda synchronously (RequestResponse)."""

    def __init__(self, function_name: str, lambda_client: Any) -> None:
        self._function = function_name
        self._lambda = lambda_client

    def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = functions.invoke(self._lambda, self._function, payload)
        except StorageError as failure:  # a transport never raises
            log.error("key service invoke failed: %s %s", type(failure).__name__, failure.code)
            if isinstance(failure, Transient):
                return _failure(UNREACHABLE_MESSAGE, UNAVAILABLE)
            return _failure(UNREACHABLE_MESSAGE)
        if resp.function_error:
            # A timeout, out-of-memory or crash of the function (it never raises by
            # contract): transient. The error payload is the runtime's trace; not passed on.
            log.error("key service function error: %s", resp.function_error)
            return _failure(UNREACHABLE_MESSAGE, UNAVAILABLE)
        try:
            answer = json.loads(resp.body)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not ("ok" in answer or "error" in answer):
            log.error("key service returned a malformed response")
            return _failure(MALFORMED_MESSAGE)
        return answer


class KeyServiceClient:
    """The ``KeyService`` protocol over any transport; counts calls and their latency."""

    def __init__(self, transport: Transport, metrics: Metrics = NO_METRICS) -> None:
        self._transport = transport
        self._metrics = metrics

    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        ok = self._call({
            "op": "data_key", "queue_arn": queue_arn, "cmk": cmk,
            "context": dict(context), "reuse_period": reuse_period,
        })
        deadline = ok.get("deadline")
        cmk_arn = ok.get("cmk_arn")
        if isinstance(deadline, bool) or not isinstance(deadline, int | float):
            raise KeyServiceError(INTERNAL_FAILURE, MALFORMED_MESSAGE)
        if not isinstance(cmk_arn, str):
            raise KeyServiceError(INTERNAL_FAILURE, MALFORMED_MESSAGE)
        return DataKey(
            plaintext=_unb64(ok, "plaintext"),
            encrypted=_unb64(ok, "encrypted"),
            cmk_arn=cmk_arn,
            deadline=float(deadline),
        )

    def decrypt_key(
        self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]
    ) -> bytes:
        ok = self._call({
            "op": "decrypt_key", "encrypted": base64.b64encode(encrypted).decode("ascii"),
            "cmk_arn": cmk_arn, "context": dict(context),
        })
        return _unb64(ok, "plaintext")

    def service_secret(self, name: str) -> bytes:
        return _unb64(self._call({"op": "service_secret", "name": name}), "plaintext")

    def seal_secret(self, *, context: Mapping[str, str], plaintext: bytes) -> bytes:
        ok = self._call({"op": "seal_secret", "context": dict(context),
                         "plaintext": base64.b64encode(plaintext).decode("ascii")})
        return _unb64(ok, "sealed")

    def open_secret(self, *, context: Mapping[str, str], sealed: bytes) -> bytes:
        ok = self._call({"op": "open_secret", "context": dict(context),
                         "sealed": base64.b64encode(sealed).decode("ascii")})
        return _unb64(ok, "plaintext")

    def _call(self, payload: dict[str, Any]) -> dict[str, Any]:
        request_id = current("request_id")
        if request_id:  # the key service's log lines name the request that caused them
            payload = {**payload, "request_id": request_id}
        started = time.perf_counter()
        try:
            answer = self._transport.call(payload)
        finally:
            self._metrics.add(KEY_SERVICE_CALLS)
            self._metrics.add(KEY_SERVICE_LATENCY, (time.perf_counter() - started) * 1000.0)
        error = answer.get("error")
        if isinstance(error, dict):
            raise KeyServiceError(
                str(error.get("code") or INTERNAL_FAILURE), str(error.get("message") or "")
            )
        ok = answer.get("ok")
        if not isinstance(ok, dict):
            raise KeyServiceError(INTERNAL_FAILURE, MALFORMED_MESSAGE)
        return ok


def _unb64(ok: Mapping[str, Any], name: str) -> bytes:
    value = ok.get(name)
    if not isinstance(value, str):
        raise KeyServiceError(INTERNAL_FAILURE, MALFORMED_MESSAGE)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyServiceError(INTERNAL_FAILURE, MALFORMED_MESSAGE) from None
