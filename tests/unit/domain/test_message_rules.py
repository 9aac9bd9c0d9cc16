"""Each validation rule with good and bad inputs and the exact SQS code."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.chars import first_invalid_char
from chalicelib.domain.messages.rules import (
    check_batch_size,
    message_size,
    parse_message_attributes,
    parse_message_system_attributes,
    validate_batch_entries,
    validate_fifo_id,
    validate_message_body,
    validate_receive_attempt_id,
)
from chalicelib.domain.queues.rules import (
    parse_queue_url,
    validate_queue_name,
    validate_tag_keys,
    validate_tags,
)
from chalicelib.domain.results import attributes_json
from chalicelib.errors import SqsError


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


@pytest.mark.parametrize("name", ["MessageGroupId", "MessageDeduplicationId"])
@pytest.mark.parametrize("value", ["g\ud800", "\udfff", "a\x00b", "tab\t", "\x7f"])
def test_a_fifo_id_with_a_lone_surrogate_or_control_character_is_refused(
    name: str, value: str
) -> None:
    _raises("InvalidParameterValue", validate_fifo_id, name, value)


@pytest.mark.parametrize("value", [1, None, ["g"], {"g": 1}, True])
def test_a_fifo_id_that_is_not_a_string_is_refused(value: Any) -> None:
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
    assert attributes_json(parse_message_attributes(raw)) == raw


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


def test_attribute_names_may_hold_letters_and_digits_of_any_script() -> None:
    names = {"attr.1øßä": _s(), "traceÀid": _s(), "名前_٣": _s()}
    assert set(parse_message_attributes(names)) == set(names)


def test_attribute_names_are_case_sensitive() -> None:
    assert set(parse_message_attributes({"a": _s(), "A": _s()})) == {"a", "A"}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "non-empty"),
        ("a" * 257, "shorter than 256 Bytes"),
        ("trace id", "can only contain"),
        ("trace@id", "can only contain"),
        ("trace§id", "can only contain"),
        ("trace€id", "can only contain"),
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
    "data_type",
    ["String.\ud800", "Number.a\x00b", "Binary.\udfff", "String.\x08", "String.\uffff"],
)
def test_a_custom_type_suffix_with_an_invalid_character_is_refused(data_type: str) -> None:
    value: dict[str, Any] = (
        {"DataType": data_type, "BinaryValue": "AA=="}
        if data_type.startswith("Binary")
        else _s("1", data_type)
    )
    err = _raises("InvalidParameterValue", parse_message_attributes, {"a": value})
    assert "invalid characters" in err.message


def test_a_custom_type_suffix_of_any_body_characters_passes() -> None:
    parse_message_attributes({"a": _s("1", "Number.é 😀\ttab")})


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
    assert parse_message_system_attributes({}) == {}
    _raises("InvalidParameterValue", parse_message_system_attributes, {"Other": _s()})


@pytest.mark.parametrize(
    "value",
    [
        _s("1", "Number"),
        _s("x", "String.custom"),
        {"DataType": "Binary", "BinaryValue": "AA=="},
        {"StringValue": "x"},
        "Root=1-abc",
        ["Root=1-abc"],
        None,
    ],
)
def test_a_trace_header_that_is_not_a_plain_string_attribute_is_refused(value: Any) -> None:
    _raises(
        "InvalidParameterValue", parse_message_system_attributes, {"AWSTraceHeader": value}
    )


@pytest.mark.parametrize("text", ["", "Root=\ud800", "Root=\x00", "x" * 8193])
def test_a_trace_header_value_that_is_empty_invalid_or_too_long_is_refused(text: str) -> None:
    _raises(
        "InvalidParameterValue", parse_message_system_attributes, {"AWSTraceHeader": _s(text)}
    )


def test_a_trace_header_of_8192_bytes_passes() -> None:
    parse_message_system_attributes({"AWSTraceHeader": _s("x" * 8192)})


@pytest.mark.parametrize("raw", ["x", ["AWSTraceHeader"], 1])
def test_system_attributes_of_the_wrong_shape_are_refused(raw: Any) -> None:
    _raises("InvalidParameterValue", parse_message_system_attributes, raw)


# -- ReceiveRequestAttemptId ------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "a" * 128, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "Az09"])
def test_a_receive_attempt_id_of_alphanumerics_and_punctuation_passes(value: str) -> None:
    assert validate_receive_attempt_id(value) == value


def test_no_receive_attempt_id_is_none() -> None:
    assert validate_receive_attempt_id(None) is None


@pytest.mark.parametrize(
    "value", ["", "a" * 129, "has space", "ü", "a\ud800", "\x00", 5, True, ["a"], {"a": "b"}]
)
def test_any_other_receive_attempt_id_is_refused(value: Any) -> None:
    _raises("InvalidParameterValue", validate_receive_attempt_id, value)


# -- queue URLs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9324/123456789012/orders", ("123456789012", "orders")),
        ("https://x.execute-api.eu-west-1.amazonaws.com/api/000000000000/q.fifo",
         ("000000000000", "q.fifo")),
        ("http://h/123456789012/q/", ("123456789012", "q")),
        ("/123456789012/q", ("123456789012", "q")),
        ("http://h/123456789012/q?x=1#f", ("123456789012", "q")),
        # The host and port are not the queue's business: only the path is read.
        ("http://[::1]:99999999/123456789012/q", ("123456789012", "q")),
    ],
)
def test_a_queue_url_gives_its_account_and_name(url: str, expected: tuple[str, str]) -> None:
    assert parse_queue_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1/x",
        "http://[zz]/123456789012/q",
        "orders",
        "",
        "http://h/",
        "http://h/123456789012",
        "http://h/12345/q",
        "http://h/123456789012/bad name",
        "http://h/123456789012/q\ud800",
        "http://h/123456789012/" + "a" * 81,
        "http://h/" + "\uff11" * 12 + "/q",
        None,
        5,
        ["http://h/123456789012/q"],
        {"url": "x"},
    ],
)
def test_anything_that_is_not_a_queue_url_is_none_and_never_raises(url: Any) -> None:
    assert parse_queue_url(url) is None


# -- tags -------------------------------------------------------------------------------


def test_valid_tags_pass_and_are_merged_over_the_existing_ones() -> None:
    assert validate_tags({"team": "a", "Env": ""}, existing={"team": "old", "x": "y"}) == {
        "team": "a",
        "Env": "",
        "x": "y",
    }


def test_no_tags_leave_the_existing_ones() -> None:
    assert validate_tags(None) == {}
    assert validate_tags(None, existing={"a": "b"}) == {"a": "b"}


@pytest.mark.parametrize(
    "key", ["k", "k" * 128, "Über straße 東京 ١٢٣", "a_b.c:d/e=f+g-h@i", "a b\u3000c", "awsx"]
)
def test_tag_keys_of_unicode_letters_digits_spaces_and_tag_symbols_pass(key: str) -> None:
    assert validate_tags({key: "v"}) == {key: "v"}


def test_a_tag_key_that_is_empty_is_refused() -> None:
    err = _raises("InvalidParameterValue", validate_tags, {"": "v"})
    assert err.message == "Tag keys must be between 1 and 128 characters in length."


def test_a_tag_key_longer_than_128_characters_is_refused() -> None:
    validate_tags({"é" * 128: "v"})
    _raises("InvalidParameterValue", validate_tags, {"k" * 129: "v"})


@pytest.mark.parametrize(
    "key", ["a\ud800", "\udfff", "tab\tkey", "new\nline", "nul\x00", "star*", "q?", "#", "é\u0301"]
)
def test_a_tag_key_with_a_character_outside_the_tagging_set_is_refused(key: str) -> None:
    err = _raises("InvalidParameterValue", validate_tags, {key: "v"})
    assert err.message == (
        "Tag keys may only contain unicode letters, digits, whitespace, or one of these "
        "symbols: _ . : / = + - @"
    )


@pytest.mark.parametrize("key", ["aws:cost", "AWS:cost", "Aws:x"])
def test_a_tag_key_with_the_reserved_aws_prefix_is_refused(key: str) -> None:
    _raises("InvalidParameterValue", validate_tags, {key: "v"})


def test_a_tag_value_may_be_empty_or_256_characters_but_not_257() -> None:
    validate_tags({"a": "", "b": "v" * 256})
    err = _raises("InvalidParameterValue", validate_tags, {"a": "v" * 257})
    assert err.message == "Tag values must be between 0 and 256 characters in length."


@pytest.mark.parametrize("value", ["a\ud800", "tab\t", "\x00", "star*"])
def test_a_tag_value_with_a_character_outside_the_tagging_set_is_refused(value: str) -> None:
    err = _raises("InvalidParameterValue", validate_tags, {"k": value})
    assert err.message.startswith("Tag values may only contain unicode letters")


@pytest.mark.parametrize("tags", ["k=v", ["k"], 5, {"k": 1}, {"k": None}, {"k": ["v"]}])
def test_tags_that_are_not_a_map_of_strings_are_refused(tags: Any) -> None:
    _raises("InvalidParameterValue", validate_tags, tags)


def test_fifty_tags_pass_after_merging_and_fifty_one_do_not() -> None:
    existing = {f"old{i}": "v" for i in range(30)}
    validate_tags({f"new{i}": "v" for i in range(20)}, existing=existing)
    validate_tags({"old0": "w"} | {f"new{i}": "v" for i in range(20)}, existing=existing)
    err = _raises(
        "InvalidParameterValue",
        validate_tags,
        {f"new{i}": "v" for i in range(21)},
        existing=existing,
        queue_name="orders",
    )
    assert err.message == "Too many tags added for queue orders."


def test_a_bad_tag_leaves_the_existing_map_untouched() -> None:
    existing = {"a": "b"}
    _raises("InvalidParameterValue", validate_tags, {"c": "d", "": "x"}, existing=existing)
    assert existing == {"a": "b"}


def test_tag_keys_to_remove_are_returned_in_order() -> None:
    assert validate_tag_keys(["b", "a", "b"]) == ["b", "a", "b"]


def test_no_tag_keys_is_a_missing_parameter() -> None:
    _raises("MissingParameter", validate_tag_keys, None)


@pytest.mark.parametrize(
    "keys", [[], [""], ["k" * 129], ["a\ud800"], ["aws:x"], [1], "k", {"k": "v"}, [None]]
)
def test_tag_keys_to_remove_follow_the_tag_key_rules(keys: Any) -> None:
    _raises("InvalidParameterValue", validate_tag_keys, keys)


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


# -- the fast paths keep the reference rules ----------------------------------------------

# Every character outside SQS's documented set, written out as the reference.
_REFUSED_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F)) | st.text())
def test_first_invalid_char_is_the_first_character_outside_sqs_allowed_set(text: str) -> None:
    found = _REFUSED_RE.search(text)
    assert first_invalid_char(text) == (found.group() if found else None)


@pytest.mark.parametrize("text, first", [
    ("ok\tbody\r\n", None), ("a\x7fb", None), ("ab\x00\x1f", "\x00"), ("ab\x0bc\x01", "\x0b"),
    ("x" * 65536 + "\x08", "\x08"), ("é\x01", "\x01"), ("\ufffe", "\ufffe"),
])
def test_first_invalid_char_examples(text: str, first: str | None) -> None:
    assert first_invalid_char(text) == first
