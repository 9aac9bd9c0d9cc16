"""What the actions take in and give back: values, never wire output.

The protocol layer (:mod:`chalicelib.protocol.shapes`) turns each result into the
action's output shape, computes the MD5s and writes JSON 1.0 or query XML. The one
thing the domain asks of the wire is a :class:`Budget`: whether one more received
message still fits the response, as the protocol answered will write it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.errors import SqsError
from chalicelib.storage.ports import MoveTask

# Message attributes, validated and normalized: name -> {"DataType": ..., and
# "StringValue": str or "BinaryValue": bytes}.
type MessageAttributes = Mapping[str, Mapping[str, Any]]


def attributes_json(attributes: MessageAttributes) -> dict[str, dict[str, str]]:
    """Normalized attributes in their JSON form (binary values as base64 text): how the
    wire and the sealed envelope both write them."""
    out: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if "BinaryValue" in value:
            encoded = base64.b64encode(bytes(value["BinaryValue"])).decode("ascii")
            out[name] = {"DataType": value["DataType"], "BinaryValue": encoded}
        else:
            out[name] = {"DataType": value["DataType"], "StringValue": value["StringValue"]}
    return out


@dataclass(frozen=True)
class OutgoingMessage:
    """A validated message to send."""

    body: str = field(repr=False)
    attributes: MessageAttributes = field(default_factory=dict, repr=False)
    delay: int | None = None
    group_id: str | None = None
    dedup_id: str | None = None
    # MessageSystemAttributes (only AWSTraceHeader), normalized like attributes.
    system: MessageAttributes = field(default_factory=dict)
    # The request's X-Amzn-Trace-Id, sealed as the AWSTraceHeader when ``system`` has
    # none; not an attribute the client sent, so no MD5 of it is answered.
    trace_header: str | None = None


@dataclass(frozen=True)
class Sent:
    """A message the backing store accepted (SendMessage, an entry of a batch)."""

    message: OutgoingMessage
    message_id: str
    sequence_number: str | None = None


@dataclass(frozen=True)
class Received:
    """An opened message, with the attributes the request asked for."""

    message_id: str
    receipt_handle: str
    body: str = field(repr=False)
    attributes: MessageAttributes = field(default_factory=dict, repr=False)
    system: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchFailure:
    entry_id: str
    error: SqsError


@dataclass(frozen=True)
class Batch[T]:
    """A batch action's answer: entries that succeeded (with their result) and failed."""

    successful: list[tuple[str, T]]
    failed: list[BatchFailure] = field(default_factory=list)


@dataclass(frozen=True)
class QueueUrl:
    url: str


@dataclass(frozen=True)
class QueueUrls:
    """ListQueues, ListDeadLetterSourceQueues."""

    urls: list[str]
    next_token: str | None = None


@dataclass(frozen=True)
class QueueAttributes:
    values: Mapping[str, str]


@dataclass(frozen=True)
class QueueTags:
    tags: Mapping[str, str]


@dataclass(frozen=True)
class TaskHandle:
    handle: str


@dataclass(frozen=True)
class TaskCancelled:
    moved: int


@dataclass(frozen=True)
class TaskEntry:
    """A move task as ListMessageMoveTasks shows it: the handle only while it runs."""

    task: MoveTask
    status: str
    handle: str | None = None


@dataclass(frozen=True)
class TaskList:
    entries: list[TaskEntry]


class Budget(Protocol):
    """The response's room for received messages, measured by the protocol answered."""

    def admit(self, message: Received) -> bool:
        """Take ``message`` into the response if it fits (the first always does)."""
        ...


type Result = (
    None | Sent | Batch[Sent] | Batch[None] | list[Received] | QueueUrl | QueueUrls
    | QueueAttributes | QueueTags | TaskHandle | TaskCancelled | TaskList
)
