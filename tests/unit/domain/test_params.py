"""Reading request parameters (either protocol's, JSON-1.0-shaped): types, ranges, texts."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain import params
from chalicelib.errors import SqsError, invalid_value


def _code(err: pytest.ExceptionInfo[SqsError]) -> str:
    return err.value.query_code


def test_require_str_returns_the_value() -> None:
    assert params.require_str({"QueueUrl": "u"}, "QueueUrl") == "u"


@pytest.mark.parametrize("given", [{}, {"QueueUrl": None}, {"QueueUrl": ""}])
def test_require_str_reports_a_missing_parameter(given: dict[str, Any]) -> None:
    with pytest.raises(SqsError) as caught:
        params.require_str(given, "QueueUrl")
    assert _code(caught) == "MissingParameter"
    assert caught.value.message == "The request must contain the parameter QueueUrl."


@pytest.mark.parametrize("value", [1, True, ["u"], {"a": "b"}])
def test_require_str_rejects_other_json_types(value: Any) -> None:
    with pytest.raises(SqsError) as caught:
        params.require_str({"QueueUrl": value}, "QueueUrl")
    assert _code(caught) == "InvalidParameterValue"


def test_opt_str_is_none_when_absent() -> None:
    assert params.opt_str({}, "NextToken") is None


@pytest.mark.parametrize("value", [0, 5, 10])
def test_opt_int_accepts_integers_in_range(value: int) -> None:
    assert params.opt_int({"N": value}, "N", 0, 10) == value


def test_opt_int_is_none_when_absent() -> None:
    assert params.opt_int({}, "N", 0, 10) is None


@pytest.mark.parametrize("value", [True, False, 1.0, 1.5, "5", [5]])
def test_opt_int_rejects_bools_floats_and_strings(value: Any) -> None:
    with pytest.raises(SqsError) as caught:
        params.opt_int({"N": value}, "N", 0, 10)
    assert _code(caught) == "InvalidParameterValue"


def test_opt_int_out_of_range_uses_sqs_wording() -> None:
    with pytest.raises(SqsError) as caught:
        params.opt_int({"MaxNumberOfMessages": 11}, "MaxNumberOfMessages", 1, 10)
    assert caught.value.message == (
        "Value 11 for parameter MaxNumberOfMessages is invalid. "
        "Reason: Must be between 1 and 10, if provided."
    )


def test_opt_int_takes_a_custom_reason() -> None:
    with pytest.raises(SqsError) as caught:
        params.opt_int(
            {"DelaySeconds": 901}, "DelaySeconds", 0, 900, "DelaySeconds must be >= 0 and <= 900."
        )
    assert caught.value.message.endswith("Reason: DelaySeconds must be >= 0 and <= 900.")


def test_require_int_reports_a_missing_parameter() -> None:
    with pytest.raises(SqsError) as caught:
        params.require_int({}, "VisibilityTimeout", 0, 43200)
    assert _code(caught) == "MissingParameter"


def test_opt_str_list_accepts_strings_only() -> None:
    assert params.opt_str_list({"A": ["x", "y"]}, "A") == ["x", "y"]
    with pytest.raises(SqsError):
        params.opt_str_list({"A": ["x", 1]}, "A")
    with pytest.raises(SqsError):
        params.opt_str_list({"A": "x"}, "A")


def test_opt_str_map_accepts_string_values_only() -> None:
    assert params.opt_str_map({"T": {"k": "v"}}, "T") == {"k": "v"}
    with pytest.raises(SqsError):
        params.opt_str_map({"T": {"k": 1}}, "T")
    with pytest.raises(SqsError):
        params.opt_str_map({"T": ["k"]}, "T")


def test_opt_object_and_opt_list_check_their_types() -> None:
    assert params.opt_object({"O": {"a": 1}}, "O") == {"a": 1}
    assert params.opt_list({"L": [1]}, "L") == [1]
    with pytest.raises(SqsError):
        params.opt_object({"O": []}, "O")
    with pytest.raises(SqsError):
        params.opt_list({"L": {}}, "L")


def test_long_values_are_echoed_whole_in_error_text_as_aws_does() -> None:
    err = invalid_value("P", "x" * 10_000, "bad")
    assert err.message == f"Value {'x' * 10_000} for parameter P is invalid. Reason: bad"
