"""Lambda's filter criteria on opened messages: what passes, what is deleted unseen."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.triggers import filters


def passes(pattern: dict[str, Any], body: str, attributes: dict[str, str] | None = None,
           message_attributes: dict[str, Any] | None = None) -> bool:
    parsed = filters.parse(json.dumps(pattern))
    view = filters.record_view(body, attributes or {}, message_attributes or {})
    return filters.matches_any([parsed], view)


ORDER = json.dumps({"kind": "order", "total": 42.5, "country": "DE",
                    "customer": {"tier": "gold"}, "tags": ["a", "b"], "note": None})


@pytest.mark.parametrize(("pattern", "expected"), [
    ({"body": {"kind": ["order"]}}, True),
    ({"body": {"kind": ["refund"]}}, False),
    ({"body": {"kind": ["refund", "order"]}}, True),
    ({"body": {"customer": {"tier": ["gold"]}}}, True),
    ({"body": {"customer": {"tier": ["silver"]}}}, False),
    ({"body": {"tags": ["b"]}}, True),
    ({"body": {"total": [42.5]}}, True),
    ({"body": {"total": ["42.5"]}}, False),
    ({"body": {"note": [None]}}, True),
    ({"body": {"kind": [{"prefix": "or"}]}}, True),
    ({"body": {"kind": [{"suffix": "der"}]}}, True),
    ({"body": {"kind": [{"equals-ignore-case": "ORDER"}]}}, True),
    ({"body": {"country": [{"anything-but": ["DE", "FR"]}]}}, False),
    ({"body": {"country": [{"anything-but": "FR"}]}}, True),
    ({"body": {"country": [{"anything-but": {"prefix": "D"}}]}}, False),
    ({"body": {"total": [{"numeric": [">", 40, "<=", 50]}]}}, True),
    ({"body": {"total": [{"numeric": ["<", 40]}]}}, False),
    ({"body": {"missing": [{"exists": False}]}}, True),
    ({"body": {"kind": [{"exists": False}]}}, False),
    ({"body": {"kind": [{"exists": True}]}}, True),
    ({"body": {"kind": ["order"], "country": ["FR"]}}, False),
    ({"body": {"$or": [{"kind": ["refund"]}, {"country": ["DE"]}]}}, True),
])
def test_a_json_body_is_matched_as_lambda_matches_it(pattern: dict[str, Any],
                                                     expected: bool) -> None:
    assert passes(pattern, ORDER) is expected


def test_a_body_that_is_not_json_is_matched_as_text() -> None:
    assert passes({"body": ["plain text"]}, "plain text")
    assert passes({"body": [{"prefix": "plain"}]}, "plain text")
    assert not passes({"body": {"kind": ["order"]}}, "plain text")


def test_attributes_and_message_attributes_can_be_matched_too() -> None:
    message_attributes = {"type": {"stringValue": "urgent", "dataType": "String"}}
    assert passes({"messageAttributes": {"type": {"stringValue": ["urgent"]}}}, "x",
                  message_attributes=message_attributes)
    assert passes({"attributes": {"ApproximateReceiveCount": ["1"]}}, "x",
                  {"ApproximateReceiveCount": "1"})
    assert not passes({"messageAttributes": {"type": {"stringValue": ["low"]}}}, "x",
                      message_attributes=message_attributes)


def test_a_message_passes_when_any_pattern_matches_and_when_there_are_none() -> None:
    view = filters.record_view(ORDER, {}, {})
    refund = filters.parse('{"body": {"kind": ["refund"]}}')
    order = filters.parse('{"body": {"kind": ["order"]}}')
    assert filters.matches_any([refund, order], view)
    assert not filters.matches_any([refund], view)
    assert filters.matches_any([], view)


@pytest.mark.parametrize("pattern", [
    "not json", "[]", "{}", '{"body": "order"}', '{"body": {"kind": []}}',
    '{"body": {"kind": [{"contains": "x"}]}}', '{"body": {"kind": [{"prefix": 1}]}}',
    '{"body": {"total": [{"numeric": [">", "4"]}]}}', '{"body": {"total": [{"numeric": [">"]}]}}',
    '{"body": {"kind": [{"exists": "yes"}]}}', '{"body": {"$or": [{"kind": ["a"]}]}}',
    '{"body": {"kind": [["nested"]]}}',
])
def test_a_pattern_lambda_would_refuse_is_refused(pattern: str) -> None:
    with pytest.raises(filters.FilterError):
        filters.parse(pattern)


def test_a_pattern_is_at_most_4096_bytes() -> None:
    with pytest.raises(filters.FilterError, match="4096"):
        filters.parse(json.dumps({"body": {"kind": ["x" * 5000]}}))
