"""AWS JSON 1.0, the protocol current SQS clients speak: request parsing, typed
parameter readers and response building.

Readers raise :class:`SqsError` with SQS's codes so a dispatcher never has to
inspect raw JSON types itself. Nothing here knows about queues or storage.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib import errors
from chalicelib.aws import service_model
from chalicelib.errors import SqsError
from chalicelib.protocol import budget

CONTENT_TYPE = "application/x-amz-json-1.0"
@dataclass(frozen=True)
class SqsRequest:
    action: str
    params: dict[str, Any]


@dataclass(frozen=True)
class HttpResponse:
    """What the route handler turns into a Chalice ``Response``; ``body`` is UTF-8 text."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def is_json_request(headers: Mapping[str, str]) -> bool:
    """True when the request speaks AWS JSON (rather than the legacy query protocol)."""
    target = _header(headers, "X-Amz-Target")
    if target is not None:
        return True
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    return content_type == CONTENT_TYPE


def operation_of(target: str | None) -> str | None:
    """The SQS operation an ``X-Amz-Target`` names (``AmazonSQS.SendMessage``), or None."""
    prefix = service_model.target_prefix()
    if target is None or not target.startswith(prefix):
        return None
    action = target[len(prefix):]
    return action if action in service_model.operations() else None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_request(headers: Mapping[str, str], body: bytes | None) -> SqsRequest:
    """Parse an AWS JSON 1.0 request; the action comes from ``X-Amz-Target``."""
    target = _header(headers, "X-Amz-Target")
    action = operation_of(target)
    if action is None:
        raise errors.unknown_operation(target)
    if not body or not body.strip():
        return SqsRequest(action, {})
    try:
        parsed = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise errors.serialization_error() from None
    if not isinstance(parsed, dict):
        raise errors.serialization_error("Request body must be a JSON object.")
    return SqsRequest(action, parsed)


# -- responses -------------------------------------------------------------------


def _headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id}


def new_request_id() -> str:
    return str(uuid.uuid4())


def message_size(message: Mapping[str, Any]) -> int:
    """Bytes one ``Message`` adds to a ReceiveMessage answer inside the proxy response
    (its JSON, encoded again by the runtime; the comma before it)."""
    return budget.proxied(_dumps(message)) + 1


def _dumps(data: Mapping[str, Any]) -> str:
    # Raw UTF-8 keeps non-ASCII bodies small; fall back to escapes if a lone
    # surrogate would make the text unencodable.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, separators=(",", ":"))
    return text


def success(data: Mapping[str, Any], request_id: str | None = None) -> HttpResponse:
    """A 200 carrying ``data`` (bytes must already be base64 text)."""
    return HttpResponse(200, _headers(request_id or new_request_id()), _dumps(data))


def failure(err: SqsError, request_id: str) -> HttpResponse:
    """The error shape botocore maps to the modeled exception (awsQueryCompatible)."""
    headers = _headers(request_id)
    headers["x-amzn-query-error"] = f"{err.query_code};{err.fault}"
    body = json.dumps({"__type": err.type, "message": err.message}, separators=(",", ":"))
    return HttpResponse(err.status, headers, body)
