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
from chalicelib.errors import SqsError

CONTENT_TYPE = "application/x-amz-json-1.0"
TARGET_PREFIX = "AmazonSQS."

# Every operation in botocore's SQS model (2012-11-05); tests check this list.
OPERATIONS = frozenset(
    {
        "AddPermission",
        "CancelMessageMoveTask",
        "ChangeMessageVisibility",
        "ChangeMessageVisibilityBatch",
        "CreateQueue",
        "DeleteMessage",
        "DeleteMessageBatch",
        "DeleteQueue",
        "GetQueueAttributes",
        "GetQueueUrl",
        "ListDeadLetterSourceQueues",
        "ListMessageMoveTasks",
        "ListQueueTags",
        "ListQueues",
        "PurgeQueue",
        "ReceiveMessage",
        "RemovePermission",
        "SendMessage",
        "SendMessageBatch",
        "SetQueueAttributes",
        "StartMessageMoveTask",
        "TagQueue",
        "UntagQueue",
    }
)


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


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_request(headers: Mapping[str, str], body: bytes | None) -> SqsRequest:
    """Parse an AWS JSON 1.0 request; the action comes from ``X-Amz-Target``."""
    target = _header(headers, "X-Amz-Target")
    if target is None or not target.startswith(TARGET_PREFIX):
        raise errors.unknown_operation(target)
    action = target[len(TARGET_PREFIX) :]
    if action not in OPERATIONS:
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


# -- parameter readers ---------------------------------------------------------


def _show(value: Any) -> str:
    """The value as AWS echoes it: whole, however long."""
    return value if isinstance(value, str) else json.dumps(value)


def invalid_value(name: str, value: Any, reason: str) -> SqsError:
    """SQS's usual text: ``Value X for parameter Y is invalid. Reason: ...``."""
    return errors.invalid_parameter_value(
        f"Value {_show(value)} for parameter {name} is invalid. Reason: {reason}"
    )


def opt_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_value(name, value, "Must be a string.")
    return value


def require_str(params: Mapping[str, Any], name: str) -> str:
    """A required string; absent, null or empty is ``MissingParameter``."""
    value = opt_str(params, name)
    if not value:
        raise errors.missing_parameter(name)
    return value


def opt_int(
    params: Mapping[str, Any],
    name: str,
    low: int,
    high: int,
    reason: str | None = None,
) -> int | None:
    """An optional JSON integer within ``[low, high]``; bools, floats and strings are refused."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_value(name, value, "Must be an integer.")
    if not low <= value <= high:
        raise invalid_value(
            name, value, reason or f"Must be between {low} and {high}, if provided."
        )
    return value


def require_int(
    params: Mapping[str, Any], name: str, low: int, high: int, reason: str | None = None
) -> int:
    value = opt_int(params, name, low, high, reason)
    if value is None:
        raise errors.missing_parameter(name)
    return value


def opt_str_list(params: Mapping[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_value(name, value, "Must be a list of strings.")
    return list(value)


def opt_str_map(params: Mapping[str, Any], name: str) -> dict[str, str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid_value(name, value, "Must be a map of strings to strings.")
    return dict(value)


def opt_object(params: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_value(name, value, "Must be an object.")
    return value


def opt_list(params: Mapping[str, Any], name: str) -> list[Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid_value(name, value, "Must be a list.")
    return value


# -- responses -------------------------------------------------------------------


def _headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id}


def new_request_id() -> str:
    return str(uuid.uuid4())


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
