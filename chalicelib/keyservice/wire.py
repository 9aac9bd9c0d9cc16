"""The key service's wire format in and out: one JSON request, one JSON answer.

The format is :mod:`chalicelib.keyservice.api`'s. :func:`answer` never raises: every
failure becomes ``{"error": {"code", "message"}}`` with an SQS code, and no answer
or log line carries key material or an AWS message text.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.keyservice.api import UNAVAILABLE, ContextError, KeyServiceError
from chalicelib.keyservice.kms import INTERNAL_FAILURE, INTERNAL_MESSAGE, UNAVAILABLE_MESSAGE
from chalicelib.observability.logs import log_context
from chalicelib.storage.errors import StorageError, Transient

if TYPE_CHECKING:
    from chalicelib.keyservice.core import KeyServiceCore

log = logging.getLogger("sealq.keyservice")

REUSE_PERIOD_RANGE = (60, 86400)


class BadRequest(Exception):
    """The payload does not follow the wire format of :mod:`chalicelib.keyservice.api`."""


def answer(core: KeyServiceCore, payload: dict[str, Any]) -> dict[str, Any]:
    """Answer one wire-format request; failures become ``{"error": ...}``, never raise.

    Its log lines carry the handler's ``request_id`` when the payload names one."""
    if not isinstance(payload, dict):
        return _answer(core, payload)
    with log_context(request_id=_request_id(payload)):
        return _answer(core, payload)

def _answer(core: KeyServiceCore, payload: dict[str, Any]) -> dict[str, Any]:
    op = payload.get("op") if isinstance(payload, dict) else None
    try:
        if op == "data_key":
            key = core.data_key(
                queue_arn=_str(payload, "queue_arn"),
                cmk=_str(payload, "cmk"),
                context=_context(payload),
                reuse_period=_reuse_period(payload),
            )
            return {"ok": {
                "plaintext": _b64(key.plaintext),
                "encrypted": _b64(key.encrypted),
                "cmk_arn": key.cmk_arn,
                "deadline": key.deadline,
            }}
        if op == "decrypt_key":
            plaintext = core.decrypt_key(
                encrypted=_bytes(payload, "encrypted"),
                cmk_arn=_str(payload, "cmk_arn"),
                context=_context(payload),
            )
            return {"ok": {"plaintext": _b64(plaintext)}}
        if op == "service_secret":
            return {"ok": {"plaintext": _b64(core.service_secret(_str(payload, "name")))}}
        if op == "seal_secret":
            sealed = core.seal_secret(
                context=_context(payload), plaintext=_bytes(payload, "plaintext"))
            return {"ok": {"sealed": _b64(sealed)}}
        if op == "open_secret":
            plaintext = core.open_secret(
                context=_context(payload), sealed=_bytes(payload, "sealed"))
            return {"ok": {"plaintext": _b64(plaintext)}}
        raise BadRequest("unknown op")
    except KeyServiceError as err:
        log.warning("key service %s failed: %s", _op_name(op), err.code)
        return _error(err.code, err.message)
    except (BadRequest, ContextError) as err:
        log.warning("key service got a bad request: %s", err)
        return _error(INTERNAL_FAILURE, "The key service request is malformed.")
    except Exception as err:  # the contract is: never raise
        if isinstance(err, Transient):  # DynamoDB throttled or down: the caller may retry
            log.warning("key service %s unavailable: %s", _op_name(op), _describe(err))
            return _error(UNAVAILABLE, UNAVAILABLE_MESSAGE)
        log.error("key service %s failed: %s", _op_name(op), _describe(err))
        return _error(INTERNAL_FAILURE, INTERNAL_MESSAGE)


# -- payload parsing -----------------------------------------------------------------


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _request_id(payload: Mapping[str, Any]) -> str | None:
    """The caller's request id if it is one (a UUID): nothing else reaches a log line."""
    value = payload.get("request_id")
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


def _op_name(op: object) -> str:
    known = ("data_key", "decrypt_key", "service_secret", "seal_secret", "open_secret")
    return op if op in known else "request"


def _describe(err: BaseException) -> str:
    """An error's type and AWS code only: AWS messages can quote request values."""
    if isinstance(err, StorageError):
        return f"{type(err).__name__} {err.code}"
    return type(err).__name__


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _str(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string")
    return value


def _bytes(payload: Mapping[str, Any], name: str) -> bytes:
    try:
        value = base64.b64decode(_str(payload, name), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} must be base64") from None
    if not value:
        raise BadRequest(f"{name} must not be empty")
    return value


def _context(payload: Mapping[str, Any]) -> dict[str, str]:
    value = payload.get("context")
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadRequest("context must be an object of strings")
    return dict(value)


def _reuse_period(payload: Mapping[str, Any]) -> int:
    value = payload.get("reuse_period")
    low, high = REUSE_PERIOD_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"reuse_period must be an integer from {low} to {high}")
    return value
