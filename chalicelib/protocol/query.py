"""The SQS query protocol older SDKs speak: form or query-string parameters in, XML out
(or the same document as JSON, for a client that accepts ``application/json``).

Driven by botocore's SQS service model (loaded once, lazily): the model's shapes say
which parameters exist, how lists and maps are flattened and what type each value
converts to, so the actions see exactly what a JSON 1.0 request would give them.
The JSON model no longer carries the query names of a few members; the rules that
derive them and the exceptions to those rules are in :func:`_element_name`,
:func:`_map_prefix` and :data:`QUERY_NAMES`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from chalicelib import errors
from chalicelib.aws import service_model
from chalicelib.errors import SqsError, invalid_value
from chalicelib.protocol import budget, json10
from chalicelib.protocol.json10 import HttpResponse, SqsRequest

NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
VERSION = "2012-11-05"
CONTENT_TYPE = "text/xml"
JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# A queue URL serves the actions on that queue; these two are the service's own (AWS:
# 400 InvalidAction "The action ... is not valid for this endpoint.").
NOT_ON_A_QUEUE_URL = frozenset({"CreateQueue", "ListQueues"})

# Query names the JSON model does not imply. Source: the 2012-11-05 query model's
# locationNames (as moto 5.2.5 restores them, sqs/2012-11-05/service-2.moto-extras.json)
# and the SQS API reference. Keyed by shape name:
# - a list shape: its element's name, or None when the query API never named it
#   (the element then takes the member's own name, as botocore does);
# - a map shape: the names of its key and value.
QUERY_NAMES: dict[str, Any] = {
    "StringList": "StringListValue",
    "BinaryList": "BinaryListValue",
    # MessageSystemAttributeNames came after the query model: MessageSystemAttributeNames.N
    "MessageSystemAttributeList": None,
    "TagMap": ("Key", "Value"),
}
_MAP_KEY_VALUE = ("Name", "Value")

_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_INDEX = 1000  # no SQS list or map comes near this; bounds the work per request

# -- names ------------------------------------------------------------------------


def _element_name(list_shape: Any, member_name: str) -> str:
    """A flattened list's element name: ``QueueUrlList`` -> ``QueueUrl``."""
    if list_shape.name in QUERY_NAMES:
        return QUERY_NAMES[list_shape.name] or member_name
    if list_shape.name.endswith("List"):
        return str(list_shape.name[: -len("List")])
    return member_name


def _map_prefix(member_name: str) -> str:
    """A flattened map's entry name: ``Attributes`` -> ``Attribute``, ``tags`` -> ``Tag``."""
    return (member_name[:1].upper() + member_name[1:]).removesuffix("s")


def _key_value(map_shape: Any) -> tuple[str, str]:
    names = QUERY_NAMES.get(map_shape.name, _MAP_KEY_VALUE)
    return str(names[0]), str(names[1])


def member_query_name(member_shape: Any, member_name: str) -> str:
    """The name a structure member has on the wire (before any ``.N`` index)."""
    if member_shape.type_name == "list" and member_shape.serialization.get("flattened"):
        return _element_name(member_shape, member_name)
    if member_shape.type_name == "map" and member_shape.serialization.get("flattened"):
        return _map_prefix(member_name)
    return member_name


# -- requests ---------------------------------------------------------------------


def is_query_request(
    method: str, headers: Mapping[str, str], query: Mapping[str, Sequence[str]]
) -> bool:
    """A form-encoded POST, or any request whose query string names an ``Action``."""
    if "Action" in query or method.upper() == "GET":
        return True
    content_type = ""
    for key, value in headers.items():
        if key.lower() == "content-type":
            content_type = value
    return content_type.split(";")[0].strip().lower() == FORM_CONTENT_TYPE


def _form(body: bytes | None) -> list[tuple[str, str]]:
    if not body:
        return []
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.malformed_query_string("The request body is not valid UTF-8.") from None
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise errors.malformed_query_string("The request body is not valid form data.") from None


def flat_params(
    query: Mapping[str, Sequence[str]], body: bytes | None
) -> dict[str, str]:
    """Query-string and form parameters in one map; the body wins, a repeated name keeps
    its last value."""
    flat: dict[str, str] = {}
    for name, values in query.items():
        if values:
            flat[name] = values[-1]
    for name, value in _form(body):
        flat[name] = value
    return flat


class _Node:
    """Parameters ``A.1.B`` as a tree: ``A`` -> ``1`` -> ``B`` holds the value."""

    __slots__ = ("children", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.children: dict[str, _Node] = {}


def _tree(flat: Mapping[str, str]) -> _Node:
    root = _Node()
    for name, value in flat.items():
        node = root
        for part in name.split("."):
            node = node.children.setdefault(part, _Node())
        node.value = value
    return root


def _indexed(node: _Node, where: str) -> list[_Node]:
    """The ``.1``, ``.2``, ... children in index order; any other child is an error."""
    items: list[tuple[int, _Node]] = []
    for key, child in node.children.items():
        if not key.isdigit() or not 1 <= int(key) <= _MAX_INDEX:
            raise errors.malformed_query_string(
                f"The parameter {where}.{key[:40]} is not a valid list or map index."
            )
        items.append((int(key), child))
    return [child for _, child in sorted(items, key=lambda item: item[0])]


def _scalar(shape: Any, node: _Node, where: str) -> Any:
    if node.value is None:
        raise errors.malformed_query_string(f"The parameter {where} must have a value.")
    raw = node.value
    kind = shape.type_name
    if kind in ("integer", "long"):
        if not _INTEGER.fullmatch(raw.strip()):
            raise invalid_value(where, raw, "Must be an integer.")
        return int(raw)
    if kind == "boolean":
        lowered = raw.strip().lower()
        if lowered not in ("true", "false"):
            raise invalid_value(where, raw, "Must be true or false.")
        return lowered == "true"
    if kind in ("float", "double"):
        try:
            return float(raw)
        except ValueError:
            raise invalid_value(where, raw, "Must be a number.") from None
    # string, blob (base64 text, as in JSON 1.0), timestamp: the actions read text.
    return raw


def _parse(shape: Any, node: _Node, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            query_name = member_query_name(member, name)
            child = node.children.get(query_name)
            if child is not None:
                out[name] = _parse(member, child, f"{where}.{query_name}".lstrip("."))
        return out
    if kind == "list":
        if node.value is not None and not node.children:
            # ``Name=`` is the query protocol's empty list; ``Name=x`` a list of one.
            return [] if node.value == "" else [_scalar(shape.member, node, where)]
        if not shape.serialization.get("flattened"):
            node = node.children.get("member", _Node())
            where = f"{where}.member"
        return [
            _parse(shape.member, child, f"{where}.{i}")
            for i, child in enumerate(_indexed(node, where), 1)
        ]
    if kind == "map":
        if not shape.serialization.get("flattened"):
            node = node.children.get("entry", _Node())
            where = f"{where}.entry"
        key_name, value_name = _key_value(shape)
        mapped: dict[str, Any] = {}
        for i, entry in enumerate(_indexed(node, where), 1):
            key = entry.children.get(key_name)
            if key is None or key.value is None:
                raise errors.missing_parameter(f"{where}.{i}.{key_name}")
            value = entry.children.get(value_name)
            if value is None:
                raise errors.missing_parameter(f"{where}.{i}.{value_name}")
            mapped[key.value] = _parse(shape.value, value, f"{where}.{i}.{value_name}")
        return mapped
    return _scalar(shape, node, where)


def parse_request(
    headers: Mapping[str, str],
    body: bytes | None,
    query: Mapping[str, Sequence[str]] | None = None,
    queue_url: str | None = None,
) -> SqsRequest:
    """A query request as the action and JSON-1.0-shaped parameters.

    ``queue_url`` is the queue the request's path names, if any: it stands in for a
    missing ``QueueUrl`` parameter. Names the action's input does not have (signature
    parameters, ``Version``) are ignored.
    """
    flat = flat_params(query or {}, body)
    action = flat.get("Action")
    if not action:
        raise errors.unknown_operation(None)
    if action not in service_model.operations():
        raise errors.unknown_operation(action[:100])
    version = flat.get("Version")
    if version is not None and version != VERSION:
        raise invalid_value("Version", version, f"The only supported version is {VERSION}.")
    if queue_url and action in NOT_ON_A_QUEUE_URL:
        raise errors.unknown_operation(action)
    if queue_url and "QueueUrl" not in flat:
        flat["QueueUrl"] = queue_url
    shape = service_model.operation(action).input_shape
    params = _parse(shape, _tree(flat), "") if shape is not None else {}
    return SqsRequest(action, params)


# -- responses ----------------------------------------------------------------------

# XML 1.0's Char production: anything else cannot appear in a document, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Element text needs only markup escaped: a quote stays a quote (``&quot;`` would make
# a body of quotes six times its size, too large for one response; see budget.py).
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"}
_TO_ESCAPE = re.compile("[&<>\r]")


def xml_text(text: str) -> str:
    """Text safe in an element: markup escaped, a carriage return kept as ``&#xD;`` (a
    parser would turn a raw one into ``\\n``), characters XML cannot carry as U+FFFD."""
    text = _NOT_XML.sub("\ufffd", text)
    return _TO_ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    return xml_text(str(value))


def _element(name: str, inner: str) -> str:
    return f"<{name}>{inner}</{name}>"


def _serialize(shape: Any, value: Any, name: str) -> str:
    """``value`` as the element(s) ``name``; flattened lists and maps repeat ``name``."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            return ""
        return _element(name, _members(shape, value))
    if kind == "list":
        items = value if isinstance(value, list) else []
        if shape.serialization.get("flattened"):
            return "".join(_serialize(shape.member, item, name) for item in items)
        return _element(name, "".join(_serialize(shape.member, i, "member") for i in items))
    if kind == "map":
        entries = value if isinstance(value, Mapping) else {}
        key_name, value_name = _key_value(shape)
        body = "".join(
            _element(
                name if shape.serialization.get("flattened") else "entry",
                _element(key_name, xml_text(str(key)))
                + _serialize(shape.value, item, value_name),
            )
            for key, item in entries.items()
        )
        return body if shape.serialization.get("flattened") else _element(name, body)
    return _element(name, _scalar_text(value))


def message_size(message: Mapping[str, Any]) -> int:
    """Bytes one ``Message`` adds to a ReceiveMessage answer inside the proxy response
    (its XML element, encoded again by the runtime)."""
    return budget.proxied(_serialize(service_model.shape("Message"), message, "Message"))


def _members(shape: Any, value: Mapping[str, Any]) -> str:
    parts = []
    for member_name, member in shape.members.items():
        if value.get(member_name) is None:
            continue
        parts.append(
            _serialize(member, value[member_name], member_query_name(member, member_name))
        )
    return "".join(parts)


def _headers(request_id: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id}


def _metadata(request_id: str) -> str:
    return _element("ResponseMetadata", _element("RequestId", xml_text(request_id)))


def success(action: str, data: Mapping[str, Any], request_id: str) -> HttpResponse:
    """``<{Action}Response>`` with ``<{Action}Result>`` when the action has an output."""
    output = service_model.operation(action).output_shape
    result = ""
    if output is not None:
        members = _members(output, data)
        # AWS writes a result with nothing in it as an empty element: <ReceiveMessageResult/>.
        result = _element(f"{action}Result", members) if members else f"<{action}Result/>"
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NAMESPACE}">'
        f"{result}{_metadata(request_id)}</{action}Response>"
    )
    return HttpResponse(200, _headers(request_id), body)


def failure(err: SqsError, request_id: str) -> HttpResponse:
    """SQS's query ``ErrorResponse``: the legacy code, same status as the JSON path."""
    error = (
        _element("Type", err.fault)
        + _element("Code", xml_text(err.query_code))
        + _element("Message", xml_text(err.query_message))
        + "<Detail/>"
    )
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{NAMESPACE}">'
        f"{_element('Error', error)}{_element('RequestId', xml_text(request_id))}"
        "</ErrorResponse>"
    )
    return HttpResponse(err.status, _headers(request_id), body)


# -- the JSON dialect and the front door ---------------------------------------------------


def accepts_json(headers: Mapping[str, str]) -> bool:
    """The client lists ``application/json`` in ``Accept`` (and not with ``q=0``): AWS
    then answers a query request with its document as JSON."""
    for key, value in headers.items():
        if key.lower() != "accept":
            continue
        for item in value.split(","):
            media, *params = (part.strip().lower() for part in item.split(";"))
            if media == JSON_CONTENT_TYPE and not any(
                p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params
            ):
                return True
    return False


def _json_document(root: str, inner: dict[str, Any], request_id: str, status: int,
                   extra: Mapping[str, str] | None = None) -> HttpResponse:
    base = json10.success({root: inner}, request_id)
    headers = {**base.headers, "Content-Type": JSON_CONTENT_TYPE, **(extra or {})}
    return HttpResponse(status, headers, base.body)


def json_success(action: str, data: Mapping[str, Any], request_id: str) -> HttpResponse:
    """The success document as JSON: ``{"<Action>Response": {"<Action>Result": {...},
    "ResponseMetadata": {"RequestId": ...}}}``, members named as in the service model."""
    inner: dict[str, Any] = {}
    if service_model.operation(action).output_shape is not None:
        inner[f"{action}Result"] = dict(data)
    inner["ResponseMetadata"] = {"RequestId": request_id}
    return _json_document(f"{action}Response", inner, request_id, 200)


def json_failure(err: SqsError, request_id: str) -> HttpResponse:
    """The ``ErrorResponse`` as JSON, with the ``x-amzn-query-error`` header as well."""
    error = {"Type": err.fault, "Code": err.query_code, "Message": err.query_message}
    return _json_document("ErrorResponse", {"Error": error, "RequestId": request_id},
                          request_id, err.status,
                          {"x-amzn-query-error": f"{err.query_code};{err.fault}"})


# AWS's front door answers a GET that names no Action with this document, before it
# looks at the request's signature (recorded: 404, on a queue URL or the service's own).
UNKNOWN_OPERATION_DOCUMENT = "<UnknownOperationException/>\n"


def unknown_operation(request_id: str) -> HttpResponse:
    return HttpResponse(404, _headers(request_id), UNKNOWN_OPERATION_DOCUMENT)
