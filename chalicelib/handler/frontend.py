"""The HTTP edge of a handler container: request in, SQS response out, never a traceback.

This is the error boundary: every failure below becomes an SQS error here. A
storage or key-service failure maps through :mod:`chalicelib.domain.failures` (transient
ones to a retryable error); only sealq's own bugs become ``InternalFailure``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chalicelib import errors
from chalicelib.auth.sigv4 import Identity, SignedRequest, Verifier
from chalicelib.aws import service_model
from chalicelib.domain.actions import Actions
from chalicelib.domain.context import Caller
from chalicelib.domain.failures import access_key_error, key_service_error, storage_error
from chalicelib.keyservice.api import KeyServiceError
from chalicelib.observability.logs import log_context
from chalicelib.observability.metrics import (
    ERRORS,
    NO_METRICS,
    REQUEST_LATENCY,
    REQUESTS,
    Metrics,
)
from chalicelib.protocol import json10
from chalicelib.protocol.wire import wire_for
from chalicelib.storage.errors import StorageError

log = logging.getLogger("sealq.frontend")


UNKNOWN_ACTION = "Unknown"


class Frontend:
    def __init__(
        self, actions: Actions, *, verifier: Verifier, receive_limit: int,
        public_url: str = "", metrics: Metrics = NO_METRICS,
    ) -> None:
        self.actions = actions
        self._verifier = verifier
        self._receive_limit = receive_limit  # bytes of messages one receive may answer
        self._public_url = public_url
        self._metrics = metrics

    def authenticate(self, request: SignedRequest) -> Identity:
        """Who signed ``request``; every refusal is an SQS error, and nothing is served
        when the access keys cannot be read."""
        try:
            return self._verifier.verify(request)
        except (StorageError, KeyServiceError) as err:
            raise access_key_error(err) from None

    def handle(
        self,
        headers: Mapping[str, str],
        body: bytes | None,
        base_url: str,
        deadline: float | None = None,
        *,
        method: str = "POST",
        path: str = "/",
        query: str = "",
        request_id: str | None = None,
    ) -> json10.HttpResponse:
        """Answer one request, in the protocol it spoke (JSON 1.0 or query).

        ``deadline`` (``time.monotonic()`` seconds) is when the invocation must have
        answered; None means no limit (the local server). ``method``, ``path`` (as the
        client signed it: behind an API Gateway stage, with the stage) and the raw
        ``query`` string are checked with the SigV4 signature before anything else; a
        query-protocol request to a queue's path means that queue.

        Every log line of the request carries its ``request_id`` (the response's
        ``x-amzn-RequestId``; made here unless given), and one INFO line at the end
        says what was asked and how it went: action, status, error code, latency;
        never a parameter. ``Requests`` and ``Errors`` are counted by action (and code),
        and ``RequestLatency`` is that latency, by action.
        """
        request_id = request_id or json10.new_request_id()
        started = time.perf_counter()
        parsed = _Parsed()
        with log_context(request_id=request_id):
            response = self._answer(headers, body, base_url, deadline, method, path, query,
                                    request_id, parsed)
            action = parsed.action
            code = parsed.code
            self._metrics.add(REQUESTS, Action=action)
            if code is not None:
                self._metrics.add(ERRORS, Action=action, Code=code)
            latency = (time.perf_counter() - started) * 1000.0
            self._metrics.add(REQUEST_LATENCY, latency, Action=action)
            log.info("%s %d %s %.1f ms", action, response.status, code or "-", latency,
                     extra={"action": action, "status": response.status, "code": code,
                            "latency_ms": round(latency, 1)})
        return response

    def _answer(
        self, headers: Mapping[str, str], body: bytes | None, base_url: str,
        deadline: float | None, method: str, path: str, query: str, request_id: str,
        parsed: _Parsed,
    ) -> json10.HttpResponse:
        wire = wire_for(method, headers, parse_qs(query, keep_blank_values=True),
                        _queue_url(base_url, path))
        parsed.action = _named_action(headers, wire.query)
        if wire.no_action:  # AWS answers before it looks at the signature
            parsed.code = "UnknownOperationException"
            return wire.unknown_operation(request_id)
        try:
            identity = self.authenticate(SignedRequest(method, path, query, headers, body or b""))
            request = wire.parse(headers, body)
            parsed.action = request.action
            budget = wire.budget(self._receive_limit)
            caller = Caller(account=identity.account, base_url=base_url, deadline=deadline,
                            secure=base_url.startswith("https://"), budget=budget,
                            trace_header=_header(headers, "x-amzn-trace-id"))
            result = self.actions.dispatch(caller, request.action, request.params)
            return wire.success(request, result, request_id, budget)
        except errors.SqsError as err:
            failure = err
        except StorageError as err:
            failure = storage_error(err)
        except KeyServiceError as err:
            failure = key_service_error(err)
        except Exception as exc:  # noqa: BLE001 - the client gets InternalFailure, never a trace
            # Log where it failed, not the exception's text: it may quote a message.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("request %s failed with %s\n%s", request_id, type(exc).__name__, frames)
            failure = errors.internal_failure()
        parsed.code = failure.code
        return wire.failure(failure, request_id)

    def base_url(self, headers: Mapping[str, str], context: Mapping[str, Any]) -> str:
        """Where clients reach this service, for queue URLs: configured, else where the
        request came. Behind API Gateway that is its domain (the stage URL's or a custom
        domain) and whatever precedes the route in the path the client asked for: the
        stage on the stage URL, a custom domain's base path (``/sqs``), nothing."""
        if self._public_url:
            return self._public_url
        domain = str(context.get("domainName") or "")
        if domain:  # API Gateway answers HTTPS only
            return f"https://{domain}{_mount_path(context)}"
        lowered = {k.lower(): v for k, v in headers.items()}
        host = lowered.get("host", "localhost")
        proto = lowered.get("x-forwarded-proto", "http")
        return f"{proto}://{host}"


class _Parsed:
    """What is known of a request's action, for its log line and metrics."""

    action = UNKNOWN_ACTION
    code: str | None = None


def _named_action(headers: Mapping[str, str], query: Mapping[str, Any]) -> str:
    """The action a request names before it is parsed (an auth failure still has one);
    only sealq's own operation names, so the metric dimension stays bounded."""
    target = next((v for k, v in headers.items() if k.lower() == "x-amz-target"), None)
    action = json10.operation_of(target) or ""
    if not action:
        named = query.get("Action") or [""]
        action = named[0] if isinstance(named, list | tuple) else str(named)
    return action if action in service_model.operations() else UNKNOWN_ACTION


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _mount_path(context: Mapping[str, Any]) -> str:
    """What precedes the route in the requested path (``requestContext.path`` less as
    many trailing segments as ``resourcePath`` has): ``/api``, ``/v1/sqs`` or ``""``."""
    segments = [s for s in str(context.get("path") or "/").split("/") if s]
    route = [s for s in str(context.get("resourcePath") or "/").split("/") if s]
    kept = segments[:len(segments) - len(route)] if len(segments) >= len(route) else []
    return "".join(f"/{s}" for s in kept)


def _queue_url(base_url: str, path: str) -> str | None:
    """The queue a request's path names (``.../{12-digit account}/{queue}`` after what the
    service is mounted under: a stage, a custom domain's base path), if any."""
    mount = urlsplit(base_url).path.rstrip("/")
    route = path[len(mount):] if mount and path.startswith(mount + "/") else path
    segments = [s for s in route.split("/") if s]
    if len(segments) < 2 or not (len(segments[-2]) == 12 and segments[-2].isdigit()):
        return None
    return f"{base_url}/{segments[-2]}/{segments[-1]}"


def deadline_from(lambda_context: Any) -> float | None:
    """The monotonic time by which a Lambda invocation must answer; None outside Lambda."""
    remaining = getattr(lambda_context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return None
    try:
        return time.monotonic() + float(remaining()) / 1000.0
    except (TypeError, ValueError):
        return None
