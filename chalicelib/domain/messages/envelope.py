"""The sealed plaintext of a message: body, attributes, sender, and the system values
SQS returns that the backing store must not see.

Sealing the envelope rather than the body alone keeps attributes out of the clear too
(invariant 6). Its JSON is part of the stored format (``docs/stored-format.md``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.results import MessageAttributes, OutgoingMessage, attributes_json

VERSION = 1


class MalformedEnvelope(ValueError):
    """An opened plaintext that is not an envelope sealq wrote."""


@dataclass(frozen=True)
class Envelope:
    body: str = field(repr=False)
    attributes: MessageAttributes = field(repr=False)
    sender: str
    system: dict[str, str]  # AWSTraceHeader, a standard queue's MessageGroupId


def encode(message: OutgoingMessage, sender: str, fifo: bool) -> bytes:
    """Body, attributes, sender and, when given, the trace header (the AWSTraceHeader
    system attribute, else the request's X-Amzn-Trace-Id) and (on a standard queue:
    fair queues) the group id, which SQS returns on receive."""
    envelope: dict[str, Any] = {
        "v": VERSION,
        "body": message.body,
        "attributes": attributes_json(message.attributes),
        "sender": sender,
    }
    trace = message.system.get("AWSTraceHeader")
    if trace is not None:
        envelope["trace"] = trace["StringValue"]
    elif message.trace_header is not None:
        envelope["trace"] = message.trace_header
    if message.group_id is not None and not fifo:
        envelope["group"] = message.group_id
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(plaintext: bytes) -> Envelope:
    """The envelope of an opened message; MalformedEnvelope when it is none."""
    try:
        envelope = json.loads(plaintext)
        if envelope.get("v") != VERSION:
            raise MalformedEnvelope("unknown envelope version")
        attributes: dict[str, dict[str, Any]] = {}
        for name, attr in envelope.get("attributes", {}).items():
            value = dict(attr)
            if "BinaryValue" in value:
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
            attributes[name] = value
        system = {}
        if isinstance(envelope.get("trace"), str):
            system["AWSTraceHeader"] = envelope["trace"]
        if isinstance(envelope.get("group"), str):
            system["MessageGroupId"] = envelope["group"]
        return Envelope(envelope["body"], attributes, envelope.get("sender", ""), system)
    except MalformedEnvelope:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as err:
        raise MalformedEnvelope(f"malformed ({type(err).__name__})") from None
