"""SQS's rules for messages: bodies, attributes, sizes, batches, receive attempts.

Pure validators raising :class:`SqsError` with SQS's codes and texts.

They run before anything is sealed or stored, so bad input changes nothing
(invariant 9). Message attributes come out normalized: ``BinaryValue`` as raw
bytes, which is what the MD5 and the sealing layer need.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib import errors
from chalicelib.domain.chars import ALLOWED_CHARS, first_invalid_char, utf8_len
from chalicelib.errors import SqsError, invalid_value
from chalicelib.storage.ports import MAX_BATCH_BYTES, MAX_BATCH_ENTRIES

MAX_ATTRIBUTES = 10
MAX_ATTRIBUTE_NAME = 256
MAX_DATA_TYPE = 256

# X-Ray's trace header: AWS documents no SQS-specific cap; Lambda's XAmznTraceId is 0-8192.
MAX_TRACE_HEADER = 8192

_BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\..+)?", re.DOTALL)
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_FIFO_ID = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")

_MIN_NUMBER = Decimal("1e-128")
_MAX_NUMBER = Decimal("1e126")


# -- bodies ----------------------------------------------------------------------


def message_size(body: str, attributes: Mapping[str, Mapping[str, Any]] | None = None) -> int:
    """Bytes SQS counts against MaximumMessageSize: body plus each attribute's
    name, type and value (UTF-8; binary values raw)."""
    size = utf8_len(body)
    for name, value in (attributes or {}).items():
        size += utf8_len(name) + utf8_len(value["DataType"])
        if "BinaryValue" in value:
            size += len(value["BinaryValue"])
        else:
            size += utf8_len(value["StringValue"])
    return size


def validate_message_body(
    body: str,
    max_size: int,
    attributes: Mapping[str, Mapping[str, Any]] | None = None,
) -> int:
    """Check a body (and the size of body plus normalized attributes); returns the size."""
    if not body:
        raise errors.missing_parameter("MessageBody")
    bad = first_invalid_char(body)
    if bad is not None:
        raise errors.invalid_message_contents(
            f"Invalid binary character '#x{ord(bad):X}' was found in the message body, "
            f"the set of allowed characters is {ALLOWED_CHARS}."
        )
    size = message_size(body, attributes)
    if size > max_size:
        raise errors.invalid_parameter_value(
            "One or more parameters are invalid. Reason: "
            f"Message must be shorter than {max_size} bytes."
        )
    return size


def validate_fifo_id(name: str, value: object) -> None:
    """MessageGroupId / MessageDeduplicationId: 1-128 alphanumeric or punctuation.

    ASCII only, so control characters and lone surrogates are refused here too.
    """
    if not isinstance(value, str):
        raise invalid_value(name, value, "Must be a string.")
    if not _FIFO_ID.fullmatch(value):
        raise invalid_value(
            name,
            value,
            f"{name} can only include alphanumeric and punctuation characters. 1 to 128 in length.",
        )


# -- message attributes ------------------------------------------------------------


def _attr_error(message: str) -> SqsError:
    return errors.invalid_parameter_value(message)


def _check_attribute_name(name: str) -> None:
    """Letters and digits of any script (AWS takes ``attr.1øßä``, recorded), ``_``, ``-``
    and ``.``; not ``§``, ``!``, ``?``, a space or any other symbol."""
    if not name:
        raise _attr_error("The request must contain non-empty message (user) attribute names.")
    if len(name) > MAX_ATTRIBUTE_NAME:
        raise _attr_error("Message (user) attribute names must be shorter than 256 Bytes")
    if not all(c.isalpha() or c.isdecimal() or c in "_-." for c in name):
        raise _attr_error(
            "Message (user) attributes name can only contain upper and lower score "
            "characters, digits, periods, hyphens and underscores. "
        )
    lowered = name.lower()
    if lowered.startswith(("aws.", "amazon.")) or name.startswith(".") or name.endswith("."):
        raise _attr_error(
            "You can't use message attribute names beginning with 'AWS.' or 'Amazon.'. "
            "These strings are reserved for internal use. Additionally, they cannot "
            "start or end with '.'."
        )
    if ".." in name:
        raise _attr_error(
            f"Message (user) attribute name '{name}' can't contain successive '.' characters."
        )


def _is_sqs_number(text: str) -> bool:
    if not _NUMBER.fullmatch(text):
        return False
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already excludes these
        return False
    if number.is_zero():
        return True
    digits = number.as_tuple().digits
    significant = "".join(map(str, digits)).strip("0")
    if len(significant) > 38:
        return False
    return _MIN_NUMBER <= abs(number) <= _MAX_NUMBER


def _decode_binary(name: str, raw: Any) -> bytes:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    if not isinstance(raw, str):
        raise invalid_value(f"MessageAttributes.{name}.BinaryValue", raw, "Must be base64 text.")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_value(
            f"MessageAttributes.{name}.BinaryValue", raw, "Must be base64 text."
        ) from None


def _parse_one(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_value(f"MessageAttributes.{name}", value, "Must be an object.")
    data_type = value.get("DataType")
    if data_type is None or data_type == "":
        raise _attr_error("Missing required parameter DataType")
    if not isinstance(data_type, str) or not _DATA_TYPE.fullmatch(data_type):
        raise _attr_error(
            f"The type of message (user) attribute '{name}' is invalid. You must use only "
            "the following supported type prefixes: Binary, Number, String."
        )
    if len(data_type) > MAX_DATA_TYPE:
        raise _attr_error("Message (user) attribute types must be shorter than 256 Bytes")
    if first_invalid_char(data_type) is not None:
        # SQS: a data type "has the same restrictions as the message body".
        raise _attr_error(f"Message (user) attribute '{name}' type contains invalid characters.")
    if value.get("StringListValues") or value.get("BinaryListValues"):
        raise _attr_error(
            f"Message (user) attribute '{name}': StringListValues and BinaryListValues "
            "are not supported."
        )
    base = data_type.split(".", 1)[0]
    wrong_field = "StringValue" if base == "Binary" else "BinaryValue"
    if value.get(wrong_field) is not None:
        raise _attr_error(
            f"The message attribute '{name}' with type '{base}' must use field '{base}'."
        )
    empty = f"Message (user) attribute '{name}' must contain a non-empty value of type '{base}'."
    if base == "Binary":
        raw = value.get("BinaryValue")
        data = _decode_binary(name, raw) if raw is not None else b""
        if not data:
            raise _attr_error(empty)
        return {"DataType": data_type, "BinaryValue": data}
    text = value.get("StringValue")
    if text is None or text == "":
        raise _attr_error(empty)
    if not isinstance(text, str):
        raise invalid_value(f"MessageAttributes.{name}.StringValue", text, "Must be a string.")
    if first_invalid_char(text) is not None:
        raise _attr_error(f"Message (user) attribute '{name}' contains invalid characters.")
    if base == "Number" and not _is_sqs_number(text):
        raise _attr_error(f"Can't cast the value of message (user) attribute '{name}' to a number.")
    return {"DataType": data_type, "StringValue": text}


def parse_message_attributes(raw: Any) -> dict[str, dict[str, Any]]:
    """Validate and normalize ``MessageAttributes``; binary values become bytes."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid_value("MessageAttributes", raw, "Must be a map.")
    if len(raw) > MAX_ATTRIBUTES:
        raise _attr_error(
            f"Number of message attributes [{len(raw)}] exceeds the allowed maximum "
            f"[{MAX_ATTRIBUTES}]."
        )
    parsed: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        _check_attribute_name(name)
        parsed[name] = _parse_one(name, value)
    return parsed


def trace_header_value(header: str | None) -> str | None:
    """An X-Amzn-Trace-Id header as a message's AWSTraceHeader, or None when there is
    none or it could not be one (too long, or characters SQS refuses): a header is no
    parameter the client chose, so it never fails a send."""
    if not header or len(header) > MAX_TRACE_HEADER or first_invalid_char(header) is not None:
        return None
    return header


def parse_message_system_attributes(raw: Any) -> dict[str, dict[str, Any]]:
    """``MessageSystemAttributes``: SQS accepts only ``AWSTraceHeader``, of type ``String``
    exactly (no custom suffix), with a non-empty value of body characters up to
    :data:`MAX_TRACE_HEADER` bytes."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid_value("MessageSystemAttributes", raw, "Must be a map.")
    parsed: dict[str, dict[str, Any]] = {}
    for name, value in raw.items():
        if name != "AWSTraceHeader":
            raise _attr_error(f"Message system attribute name '{name}' is invalid.")
        if not isinstance(value, dict):
            raise invalid_value(f"MessageSystemAttributes.{name}", value, "Must be an object.")
        if value.get("DataType") != "String":
            raise _attr_error(f"The message system attribute '{name}' must be of type 'String'.")
        one = _parse_one(name, value)
        if utf8_len(one["StringValue"]) > MAX_TRACE_HEADER:
            raise _attr_error(
                f"Message system attribute '{name}' must be shorter than "
                f"{MAX_TRACE_HEADER} bytes."
            )
        parsed[name] = one
    return parsed


# -- batches -----------------------------------------------------------------------


def validate_batch_entries(
    entries: Any, id_key: str = "Id", operation: str = "SendMessageBatch"
) -> list[dict[str, Any]]:
    """Check a batch's shape and entry ids; ``operation`` names it in EmptyBatchRequest."""
    if entries is None or entries == []:
        raise errors.empty_batch_request(operation)
    if not isinstance(entries, list):
        raise invalid_value("Entries", entries, "Must be a list.")
    if len(entries) > MAX_BATCH_ENTRIES:
        raise errors.too_many_entries_in_batch_request(len(entries))
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise invalid_value("Entries", entry, "Each entry must be an object.")
        entry_id = entry.get(id_key)
        if not isinstance(entry_id, str) or not _BATCH_ID.fullmatch(entry_id):
            raise errors.invalid_batch_entry_id()
        if entry_id in seen:
            raise errors.batch_entry_ids_not_distinct(entry_id)
        seen.add(entry_id)
    return entries


def check_batch_size(sizes: Iterable[int], limit: int = MAX_BATCH_BYTES) -> int:
    """Total of the entries' message sizes; BatchRequestTooLong above ``limit``."""
    total = sum(sizes)
    if total > limit:
        raise errors.batch_request_too_long(total, limit)
    return total


# -- receive --------------------------------------------------------------------------


def validate_receive_attempt_id(value: object) -> str | None:
    """ReceiveRequestAttemptId: absent, or 1-128 of ``a-zA-Z0-9`` and ASCII punctuation
    (SQS API reference, ReceiveMessage)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_value("ReceiveRequestAttemptId", value, "Must be a string.")
    if not _FIFO_ID.fullmatch(value):
        raise invalid_value(
            "ReceiveRequestAttemptId",
            value,
            "ReceiveRequestAttemptId can only include alphanumeric and punctuation "
            "characters. 1 to 128 in length.",
        )
    return value


