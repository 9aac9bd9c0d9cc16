"""Each validation rule with good and bad inputs and the exact SQS code."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chalicelib.protocol.errors import SqsError
from chalicelib.protocol.validation import (
    check_batch_size,
    message_size,
    parse_message_attributes,
    parse_message_system_attributes,
    serialize_message_attributes,
    validate_batch_entries,
    validate_fifo_id,
    validate_message_body,
    validate_queue_name,
)


def _raises(code: str, fn: Any, *args: Any, **kwargs: Any) -> SqsError:
    with pytest.raises(SqsError) as caught:
        fn(*args, **kwargs)
    assert caught.value.query_code == code, caught.value
    return caught.value


# -- queue names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fifo"),
    [
        ("q", False),
        ("Orders_2024-eu", False),
        ("a" * 80, False),
        ("q.fifo", True),
        ("a" * 75 + ".fifo", True),
    ],
)
def test_valid_queue_names_pass(name: str, fifo: bool) -> None:
    validate_queue_name(name, fifo)


@pytest.mark.parametrize(
    ("name", "fifo"),
    [
        ("", False),
        ("a" * 81, False),
        ("has space", False),
        ("dot.name", False),
        ("q.fifo", False),
        ("ünï", False),
        ("q\n", False),
        ("q", True),
        (".fifo", True),
        ("a" * 76 + ".fifo", True),
        ("bad!.fifo", True),
    ],
)
def test_invalid_queue_names_are_invalid_parameter_value(name: str, fifo: bool) -> None:
    err = _raises("InvalidParameterValue", validate_queue_name, name, fifo)
    assert ("FIFO" in err.message) == fifo


# -- bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", ["x", "tab\tnewline\ncr\r", "\ud7ff\ue000\ufffd", "😀\U0010ffff", "日本語"]
)
def test_bodies_of_allowed_characters_pass(body: str) -> None:
    assert validate_message_body(body, 1024) == len(body.encode("utf-8"))


def test_an_empty_body_is_a_missing_parameter() -> None:
    _raises("MissingParameter", validate_message_body, "", 1024)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("a\x00b", "#x0"),
        ("\x08", "#x8"),
        ("\x1f", "#x1F"),
        ("\ufffe", "#xFFFE"),
        ("\uffff", "#xFFFF"),
        ("\ud800", "#xD800"),
    ],
)
def test_disallowed_characters_are_invalid_message_contents(body: str, shown: str) -> None:
    err = _raises("InvalidMessageContents", validate_message_body, body, 1024)
    assert err.message.startswith(
        f"Invalid binary character '{shown}' was found in the message body"
    )


def test_body_size_counts_utf8_bytes() -> None:
    validate_message_body("é" * 512, 1024)
    err = _raises("InvalidParameterValue", validate_message_body, "é" * 513, 1024)
    assert err.message == (
        "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."
    )


def test_attribute_names_types_and_values_count_toward_the_size() -> None:
    attrs: dict[str, dict[str, Any]] = {
        "ab": {"DataType": "String", "StringValue": "xyz"},
        "c": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    assert message_size("body", attrs) == 4 + (2 + 6 + 3) + (1 + 6 + 2)
    validate_message_body("b" * (1024 - 20), 1024, attrs)
    _raises("InvalidParameterValue", validate_message_body, "b" * (1024 - 19), 1024, attrs)


# -- FIFO ids -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["g1", "a" * 128, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"])
def test_fifo_ids_of_alphanumerics_and_punctuation_pass(value: str) -> None:
    validate_fifo_id("MessageGroupId", value)


@pytest.mark.parametrize("value", ["", "a" * 129, "has space", "ü"])
def test_other_fifo_ids_are_invalid_parameter_value(value: str) -> None:
    _raises("InvalidParameterValue", validate_fifo_id, "MessageGroupId", value)


# -- message attributes ------------------------------------------------------------------


def _s(value: str = "v", data_type: str = "String") -> dict[str, str]:
    return {"DataType": data_type, "StringValue": value}


def test_attributes_are_normalized_with_binary_decoded() -> None:
    raw = {
        "s": _s("text"),
        "n": _s("12.5", "Number.float"),
        "b": {"DataType": "Binary.jpg", "BinaryValue": base64.b64encode(b"\x00\xff").decode()},
    }
    assert parse_message_attributes(raw) == {
        "s": {"DataType": "String", "StringValue": "text"},
        "n": {"DataType": "Number.float", "StringValue": "12.5"},
        "b": {"DataType": "Binary.jpg", "BinaryValue": b"\x00\xff"},
    }


def test_no_attributes_parse_to_an_empty_map() -> None:
    assert parse_message_attributes(None) == {}
    assert parse_message_attributes({}) == {}


def test_serialize_turns_bytes_back_into_base64() -> None:
    raw = {"b": {"DataType": "Binary", "BinaryValue": "AP8="}, "s": _s()}
    assert serialize_message_attributes(parse_message_attributes(raw)) == raw


def test_ten_attributes_pass_and_eleven_do_not() -> None:
    parse_message_attributes({f"a{i}": _s() for i in range(10)})
    err = _raises(
        "InvalidParameterValue", parse_message_attributes, {f"a{i}": _s() for i in range(11)}
    )
    assert err.message == "Number of message attributes [11] exceeds the allowed maximum [10]."


@pytest.mark.parametrize(
    "name", ["a", "Foo_Bar-1.2", "trace.id", "AWSfoo", "amazonfoo", "aws-x", "a" * 256]
)
def test_valid_attribute_names_pass(name: str) -> None:
    parse_message_attributes({name: _s()})


def test_attribute_names_are_case_sensitive() -> None:
    assert set(parse_message_attributes({"a": _s(), "A": _s()})) == {"a", "A"}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "non-empty"),
        ("a" * 257, "shorter than 256 Bytes"),
        ("trace id", "can only contain"),
        ("trace@id", "can only contain"),
        ("traceÀid", "can only contain"),
        ("AWS.trace", "reserved for internal use"),
        ("aws.trace", "reserved for internal use"),
        ("AmAzOn.trace", "reserved for internal use"),
        (".trace", "cannot start or end with '.'"),
        ("trace.", "cannot start or end with '.'"),
        ("trace..id", "successive '.'"),
    ],
)
def test_invalid_attribute_names_are_rejected(name: str, fragment: str) -> None:
    err = _raises("InvalidParameterValue", parse_message_attributes, {name: _s()})
    assert fragment in err.message


@pytest.mark.parametrize(
    "data_type",
    ["String", "Number", "Binary", "String.json", "Number.java.lang.Long", "Binary.gif"],
)
def test_the_three_types_and_custom_suffixes_pass(data_type: str) -> None:
    value: dict[str, Any] = (
        {"DataType": data_type, "BinaryValue": "AA=="}
        if data_type.startswith("Binary")
        else _s("1", data_type)
    )
    parse_message_attributes({"a": value})


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"StringValue": "v"}, "Missing required parameter DataType"),
        (_s("v", ""), "Missing required parameter DataType"),
        (_s("v", "string"), "supported type prefixes"),
        (_s("v", "Str"), "supported type prefixes"),
        (_s("v", "Strings"), "supported type prefixes"),
        (_s("v", "String."), "supported type prefixes"),
        (_s("v", "String." + "a" * 250), "types must be shorter than 256 Bytes"),
        ({"DataType": 1, "StringValue": "v"}, "supported type prefixes"),
    ],
)
def test_bad_data_types_are_rejected(value: dict[str, Any], fragment: str) -> None:
    err = _raises("InvalidParameterValue", parse_message_attributes, {"a": value})
    assert fragment in err.message


@pytest.mark.parametrize(
    "value",
    [
        _s(""),
        {"DataType": "String"},
        _s("", "Number"),
        {"DataType": "Binary", "BinaryValue": ""},
        {"DataType": "Binary"},
    ],
)
def test_empty_values_are_rejected(value: dict[str, Any]) -> None:
    err = _raises("InvalidParameterValue", parse_message_attributes, {"a": value})
    assert "must contain a non-empty value of type" in err.message


def test_empty_string_value_text_matches_sqs() -> None:
    err = _raises("InvalidParameterValue", parse_message_attributes, {"ErrorDetails": _s("")})
    assert err.message == (
        "Message (user) attribute 'ErrorDetails' must contain a non-empty value of type 'String'."
    )


@pytest.mark.parametrize(
    "value",
    [
        {"DataType": "String", "StringValue": "v", "BinaryValue": "AA=="},
        {"DataType": "Binary", "BinaryValue": "AA==", "StringValue": "v"},
    ],
)
def test_a_value_in_the_other_types_field_is_rejected(value: dict[str, Any]) -> None:
    _raises("InvalidParameterValue", parse_message_attributes, {"a": value})


@pytest.mark.parametrize("value", ["v\x00", "\x08", "\uffff", "\ud800"])
def test_string_values_allow_only_body_characters(value: str) -> None:
    _raises("InvalidParameterValue", parse_message_attributes, {"a": _s(value)})


@pytest.mark.parametrize(
    "number",
    [
        "0",
        "-0",
        "42",
        "+7",
        "-1.5",
        ".5",
        "5.",
        "1e10",
        "-2.5E-3",
        "1" * 38,
        "1" * 38 + "000",
        "0.000" + "1" * 38,
        "1e126",
        "-1e126",
        "1e-128",
        "-1e-128",
        "0e999",
    ],
)
def test_numbers_within_sqs_range_and_precision_pass(number: str) -> None:
    parse_message_attributes({"n": _s(number, "Number")})


@pytest.mark.parametrize(
    "number",
    [
        "abc",
        " 1",
        "1 ",
        "1,5",
        "0x10",
        "NaN",
        "Infinity",
        "1e",
        "--1",
        "1" * 39,
        "1." + "0" * 37 + "1",
        "1e127",
        "-1.1e126",
        "1e-129",
        "9e-129",
    ],
)
def test_numbers_outside_sqs_rules_are_rejected(number: str) -> None:
    err = _raises("InvalidParameterValue", parse_message_attributes, {"n": _s(number, "Number")})
    assert err.message == "Can't cast the value of message (user) attribute 'n' to a number."


@pytest.mark.parametrize("raw", ["not base64!", "AAA", 12, ["AA=="]])
def test_binary_values_must_be_base64_text(raw: Any) -> None:
    _raises(
        "InvalidParameterValue",
        parse_message_attributes,
        {"b": {"DataType": "Binary", "BinaryValue": raw}},
    )


def test_list_values_are_not_supported() -> None:
    value = {"DataType": "String", "StringListValues": ["a"]}
    _raises("InvalidParameterValue", parse_message_attributes, {"a": value})


@pytest.mark.parametrize("raw", ["x", ["a"], {"a": "v"}])
def test_attributes_of_the_wrong_shape_are_rejected(raw: Any) -> None:
    _raises("InvalidParameterValue", parse_message_attributes, raw)


def test_the_trace_header_is_the_only_system_attribute() -> None:
    raw = {"AWSTraceHeader": _s("Root=1-abc")}
    assert parse_message_system_attributes(raw) == {"AWSTraceHeader": _s("Root=1-abc")}
    assert parse_message_system_attributes(None) == {}
    _raises("InvalidParameterValue", parse_message_system_attributes, {"Other": _s()})
    _raises(
        "InvalidParameterValue",
        parse_message_system_attributes,
        {"AWSTraceHeader": _s("1", "Number")},
    )


# -- batches ------------------------------------------------------------------------------


def test_a_valid_batch_is_returned_unchanged() -> None:
    entries = [{"Id": "a"}, {"Id": "B-2_c"}, {"Id": "x" * 80}]
    assert validate_batch_entries(entries) == entries


@pytest.mark.parametrize("entries", [None, []])
def test_an_empty_batch_is_empty_batch_request(entries: Any) -> None:
    err = _raises(
        "AWS.SimpleQueueService.EmptyBatchRequest",
        validate_batch_entries,
        entries,
        operation="DeleteMessageBatch",
    )
    assert "DeleteMessageBatchRequestEntry" in err.message


def test_ten_entries_pass_and_eleven_are_too_many() -> None:
    validate_batch_entries([{"Id": str(i)} for i in range(10)])
    err = _raises(
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        validate_batch_entries,
        [{"Id": str(i)} for i in range(11)],
    )
    assert err.message == "Maximum number of entries per request are 10. You have sent 11."


@pytest.mark.parametrize("entry_id", ["", "a" * 81, "has space", "dot.id", "ü", None, 5])
def test_bad_entry_ids_are_invalid_batch_entry_id(entry_id: Any) -> None:
    _raises(
        "AWS.SimpleQueueService.InvalidBatchEntryId", validate_batch_entries, [{"Id": entry_id}]
    )


def test_repeated_ids_are_batch_entry_ids_not_distinct() -> None:
    err = _raises(
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        validate_batch_entries,
        [{"Id": "a"}, {"Id": "b"}, {"Id": "a"}],
    )
    assert err.message == "Id a repeated."


def test_entry_ids_are_case_sensitive() -> None:
    validate_batch_entries([{"Id": "a"}, {"Id": "A"}])


def test_a_custom_id_key_is_honoured() -> None:
    validate_batch_entries([{"EntryId": "a"}], id_key="EntryId")
    _raises(
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        validate_batch_entries,
        [{"Id": "a"}],
        id_key="EntryId",
    )


@pytest.mark.parametrize("entries", ["x", {"Id": "a"}, ["a"]])
def test_batches_of_the_wrong_shape_are_invalid_parameter_value(entries: Any) -> None:
    _raises("InvalidParameterValue", validate_batch_entries, entries)


def test_batch_size_is_limited_to_one_mebibyte() -> None:
    assert check_batch_size([1024 * 1024 - 1, 1]) == 1024 * 1024
    err = _raises("AWS.SimpleQueueService.BatchRequestTooLong", check_batch_size, [1024 * 1024, 1])
    assert err.message == (
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes."
    )
