"""MD5OfMessageBody / MD5OfMessageAttributes against fixed vectors and moto's implementation."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest
from moto.sqs.models import Message

from chalicelib.protocol.md5 import md5_of_attributes, md5_of_body, md5_of_system_attributes


def test_body_md5_of_a_known_string() -> None:
    assert md5_of_body("hello") == "5d41402abc4b2a76b9719d911017c592"


def test_body_md5_hashes_utf8_bytes() -> None:
    assert md5_of_body("héllo ✓ 😀") == hashlib.md5("héllo ✓ 😀".encode()).hexdigest()


def test_attribute_md5_matches_a_response_captured_from_aws() -> None:
    # ReceiveMessage from real SQS: body "foobar2", one String attribute.
    attrs = {"AtTimestamp": {"DataType": "String", "StringValue": "2021-02-15T12:00:33+09:00"}}
    assert md5_of_body("foobar2") == "cbac77acf401ef89c3297bd9fc41ec0b"
    assert md5_of_attributes(attrs) == "9fd5e217089075be61cd1d67e35e5117"


def test_attribute_md5_follows_the_documented_byte_layout() -> None:
    attrs: dict[str, dict[str, Any]] = {
        "b": {"DataType": "Binary.gif", "BinaryValue": b"\x00\xff"},
        "a": {"DataType": "Number", "StringValue": "1"},
    }

    def field(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    expected = (
        field(b"a")
        + field(b"Number")
        + b"\x01"
        + field(b"1")
        + field(b"b")
        + field(b"Binary.gif")
        + b"\x02"
        + field(b"\x00\xff")
    )
    assert md5_of_attributes(attrs) == hashlib.md5(expected).hexdigest()


def test_attribute_md5_ignores_input_order() -> None:
    one = {
        "x": {"DataType": "String", "StringValue": "1"},
        "y": {"DataType": "String", "StringValue": "2"},
    }
    two = {"y": one["y"], "x": one["x"]}
    assert md5_of_attributes(one) == md5_of_attributes(two)


def test_attribute_names_sort_by_code_point_so_case_matters() -> None:
    attrs = {
        "b": {"DataType": "String", "StringValue": "1"},
        "B": {"DataType": "String", "StringValue": "2"},
    }
    assert md5_of_attributes(attrs) == _moto_md5(attrs)


def _moto_md5(attrs: dict[str, Any]) -> str:
    message = Message("id", "body")
    message.message_attributes = attrs
    return message.attribute_md5


ATTRIBUTE_SETS: list[dict[str, Any]] = [
    {"s": {"DataType": "String", "StringValue": "plain"}},
    {"u": {"DataType": "String", "StringValue": "ünïcødé ✓ 日本語 😀"}},
    {"n": {"DataType": "Number", "StringValue": "-1.5e10"}},
    {"c": {"DataType": "Number.java.lang.Long", "StringValue": "42"}},
    {"j": {"DataType": "String.json", "StringValue": '{"a": [1, 2]}'}},
    {"bin": {"DataType": "Binary", "BinaryValue": bytes(range(256))}},
    {"img": {"DataType": "Binary.png", "BinaryValue": b"\x89PNG\r\n\x1a\n"}},
    {
        "trace-id": {"DataType": "String", "StringValue": "Root=1-5759e988"},
        "retries": {"DataType": "Number", "StringValue": "3"},
        "payload": {"DataType": "Binary", "BinaryValue": "日本".encode()},
        "Z.last": {"DataType": "String", "StringValue": "z"},
        "a_first": {"DataType": "String", "StringValue": "\t\n\r"},
    },
]


@pytest.mark.parametrize("attrs", ATTRIBUTE_SETS, ids=lambda a: ",".join(sorted(a)))
def test_attribute_md5_agrees_with_moto(attrs: dict[str, Any]) -> None:
    assert md5_of_attributes(attrs) == _moto_md5(attrs)


@pytest.mark.parametrize("body", ["x", "ünïcødé ✓ 😀", "line\nbreak\ttab", "a" * 100_000])
def test_body_md5_agrees_with_moto(body: str) -> None:
    assert md5_of_body(body) == Message("id", body).body_md5


def test_system_attribute_md5_uses_the_same_algorithm() -> None:
    attrs = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe"}}
    assert md5_of_system_attributes(attrs) == _moto_md5(attrs)
