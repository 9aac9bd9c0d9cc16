"""Queue attribute rules: every value checked against SQS's limits before anything is written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.queues.attributes import (
    MAX_POLICY_BYTES,
    validate_attributes,
)
from chalicelib.errors import SqsError

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-2:111122223333:key/{KEY_ID}"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage"}],
    }
)


def _validate(raw: dict[str, Any], fifo: bool = False, creating: bool = False) -> dict[str, str]:
    return validate_attributes(raw, fifo=fifo, creating=creating)


def _refused(code: str, raw: dict[str, Any], fifo: bool = False) -> SqsError:
    with pytest.raises(SqsError) as caught:
        _validate(raw, fifo)
    assert caught.value.query_code == code, caught.value
    return caught.value


# -- integers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "normalized"),
    [
        ("VisibilityTimeout", "0", "0"),
        ("VisibilityTimeout", "43200", "43200"),
        ("DelaySeconds", "900", "900"),
        ("MaximumMessageSize", "1024", "1024"),
        ("MessageRetentionPeriod", "1209600", "1209600"),
        ("ReceiveMessageWaitTimeSeconds", "20", "20"),
        ("KmsDataKeyReusePeriodSeconds", "60", "60"),
    ],
)
def test_integer_attributes_within_their_ranges_pass(
    name: str, value: str, normalized: str
) -> None:
    assert _validate({name: value}) == {name: normalized}


@pytest.mark.parametrize(("value", "normalized"), [("+30", "30"), ("030", "30"), ("-0", "0")])
def test_integer_attributes_accept_a_sign_and_leading_zeros_as_javas_parse_int_does(
    value: str, normalized: str
) -> None:
    assert _validate({"VisibilityTimeout": value}) == {"VisibilityTimeout": normalized}


@pytest.mark.parametrize(
    "value",
    [" 30 ", "30 ", " 30", "\t30", "30\n", "3 0", "3_0", "30.0", "3e1", "0x1e", "", "thirty",
     "\uff13\uff10", "\u0663\u0660", "++30", "+", "-", "00000000030"],
)
def test_integer_attributes_that_java_parse_int_or_ascii_digits_refuse_are_invalid(
    value: str,
) -> None:
    err = _refused("InvalidAttributeValue", {"VisibilityTimeout": value})
    assert err.message == "Invalid value for the parameter VisibilityTimeout."


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VisibilityTimeout", "43201"),
        ("VisibilityTimeout", "-1"),
        ("DelaySeconds", "901"),
        ("MaximumMessageSize", "1023"),
        ("MaximumMessageSize", "1048577"),
        ("MessageRetentionPeriod", "59"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
        ("KmsDataKeyReusePeriodSeconds", "86401"),
        ("KmsDataKeyReusePeriodSeconds", "9" * 10),
    ],
)
def test_integer_attributes_outside_their_ranges_are_invalid(name: str, value: str) -> None:
    _refused("InvalidAttributeValue", {name: value})


def test_an_integer_with_thousands_of_digits_is_invalid_not_a_crash() -> None:
    _refused("InvalidAttributeValue", {"DelaySeconds": "9" * 5000})


# -- names and value types -------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Colour", "QueueArn", "ApproximateNumberOfMessages", "", "\ud800"]
)
def test_unknown_or_read_only_names_are_invalid_attribute_name(name: str) -> None:
    _refused("InvalidAttributeName", {name: "1"})


def test_content_based_deduplication_is_only_for_fifo_queues() -> None:
    assert _validate({"ContentBasedDeduplication": "true"}, fifo=True) == {
        "ContentBasedDeduplication": "true"
    }
    _refused("InvalidAttributeName", {"ContentBasedDeduplication": "true"})


@pytest.mark.parametrize("value", [30, 1.5, True, None, ["30"], {"v": "30"}])
def test_a_value_that_is_not_a_string_is_invalid(value: Any) -> None:
    _refused("InvalidAttributeValue", {"VisibilityTimeout": value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (
            "RedrivePolicy",
            '{"deadLetterTargetArn": "arn:aws:sqs:r:1:\ud800", "maxReceiveCount": 1}',
        ),
        ("ContentBasedDeduplication", "true\x00"),
        ("SqsManagedSseEnabled", "\ud800"),
        ("VisibilityTimeout", "\ufffe"),
    ],
)
def test_any_value_with_a_character_sqs_refuses_is_invalid_attribute_value(
    name: str, value: str
) -> None:
    _refused("InvalidAttributeValue", {name: value}, fifo=True)


@pytest.mark.parametrize("value", ["[[[[" * 20000, "[" * 100000 + "]" * 100000, "NaN"])
def test_a_redrive_policy_too_deep_or_not_json_is_refused_not_a_crash(value: str) -> None:
    _refused("InvalidParameterValue", {"RedrivePolicy": value})


# -- Policy ------------------------------------------------------------------------------


def test_a_policy_of_json_object_text_is_kept_as_given() -> None:
    assert _validate({"Policy": POLICY}) == {"Policy": POLICY}


def test_an_empty_policy_is_kept_as_empty_meaning_remove_it() -> None:
    assert _validate({"Policy": ""}) == {"Policy": ""}


def test_a_policy_of_exactly_8192_bytes_passes_and_one_more_byte_does_not() -> None:
    def of_size(size: int) -> str:
        text = json.dumps({"Id": ""})
        return json.dumps({"Id": "x" * (size - len(text))})

    assert len(of_size(MAX_POLICY_BYTES)) == MAX_POLICY_BYTES
    _validate({"Policy": of_size(MAX_POLICY_BYTES)})
    _refused("InvalidAttributeValue", {"Policy": of_size(MAX_POLICY_BYTES + 1)})


def test_a_policy_size_counts_utf8_bytes() -> None:
    text = json.dumps({"Id": "é" * 4100}, ensure_ascii=False)
    assert len(text) < MAX_POLICY_BYTES < len(text.encode())
    _refused("InvalidAttributeValue", {"Policy": text})


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[]",
        '"text"',
        "42",
        "null",
        "{",
        '{"a": NaN}',
        '{"Id": "\\ud800"}',
        '{"\\udfff": 1}',
        '{"Id": "\\u0000"}',
        "{\"Id\": \"\ud800\"}",
        " ",
        "[" * 100000,
    ],
)
def test_a_policy_that_is_not_valid_json_object_text_is_invalid(value: str) -> None:
    err = _refused("InvalidAttributeValue", {"Policy": value})
    assert err.message == "Invalid value for the parameter Policy."


# -- KmsMasterKeyId ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        KEY_ID,
        "mrk-1234abcd12ab34cd56ef1234567890ab",
        KEY_ARN,
        "alias/sealq-default",
        "arn:aws:kms:us-east-2:111122223333:alias/ExampleAlias",
        # AWS takes any text (recorded: testKeyId); KMS answers when a message is sent.
        "testKeyId",
        "x",
        "alias/has space",
        "k" * 3000,
    ],
)
def test_any_kms_master_key_id_is_kept_as_given_for_the_allow_list_to_decide(
    value: str,
) -> None:
    assert _validate({"KmsMasterKeyId": value}) == {"KmsMasterKeyId": value}


def test_an_empty_kms_master_key_id_is_kept_as_empty_meaning_the_service_default() -> None:
    assert _validate({"KmsMasterKeyId": ""}) == {"KmsMasterKeyId": ""}


@pytest.mark.parametrize("value", ["alias/\ud800", "alias/a\x00"])
def test_a_kms_master_key_id_of_characters_sqs_refuses_is_invalid(value: str) -> None:
    err = _refused("InvalidAttributeValue", {"KmsMasterKeyId": value})
    assert err.message == "Invalid value for the parameter KmsMasterKeyId."


def test_a_kms_key_with_sqs_managed_encryption_is_refused() -> None:
    _refused(
        "InvalidAttributeName", {"KmsMasterKeyId": KEY_ID, "SqsManagedSseEnabled": "true"}
    )


def test_resetting_the_kms_key_with_sqs_managed_encryption_on_is_allowed() -> None:
    assert _validate({"KmsMasterKeyId": "", "SqsManagedSseEnabled": "true"}) == {
        "KmsMasterKeyId": "",
        "SqsManagedSseEnabled": "true",
    }


def test_the_fifo_flag_is_left_to_create_queue() -> None:
    assert _validate({"FifoQueue": "true"}, fifo=True, creating=True) == {}
    _refused("InvalidAttributeName", {"FifoQueue": "true"}, fifo=True)


def test_nothing_is_returned_when_one_value_of_many_is_bad() -> None:
    with pytest.raises(SqsError):
        _validate({"VisibilityTimeout": "10", "DelaySeconds": " 5"})
