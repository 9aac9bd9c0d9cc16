"""The ReceiveMessage response budget: measured as each protocol writes a message, then
as the Lambda runtime (python3.12 and newer) writes the proxy response around it."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.results import Received
from chalicelib.protocol import json10, query, shapes
from chalicelib.protocol.budget import ResponseBudget, proxied
from chalicelib.protocol.wire import wire_for

# What SQS accepts in a body: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
BODY_CHARS = st.characters(codec="utf-8").filter(
    lambda c: c in "\t\n\r" or (" " <= c and c not in "\ufffe\uffff"))
LAMBDA_MB = 6_291_456


def runtime_bytes(text: str) -> int:
    """Bytes ``text`` takes as the Lambda runtime writes the proxy body: a JSON string,
    non-ASCII as UTF-8, less the two quotes around it."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


def message(body: str, **attributes: str) -> Received:
    return Received("m-1", "sq2.handle", body,
                    {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
                    {"SenderId": "000000000000"})


@settings(max_examples=300, deadline=None)
@given(st.text(BODY_CHARS))
def test_a_json_message_is_measured_as_the_runtime_writes_it(body: str) -> None:
    written = shapes.received(message(body, k=body))
    text = json.dumps(written, ensure_ascii=False, separators=(",", ":"))
    assert json10.message_size(written) == runtime_bytes(text) + 1  # and the comma


@settings(max_examples=300, deadline=None)
@given(st.text(BODY_CHARS))
def test_a_query_message_is_measured_as_the_runtime_writes_its_xml(body: str) -> None:
    written = shapes.received(message(body, k=body))
    xml = query._serialize(query.service_model.shape("Message"), written, "Message")
    assert query.message_size(written) == runtime_bytes(xml)


@given(st.text(st.characters(codec="utf-8"), min_size=1, max_size=64))
def test_proxied_counts_each_character_as_the_runtime_writes_it(text: str) -> None:
    assert proxied(text) == runtime_bytes(text)


@pytest.mark.parametrize("measure", [json10.message_size, query.message_size])
@pytest.mark.parametrize("char", ['"', "&", "<", ">", "\\", "\n", "\r", "\t", "\u00e9",
                                  "\u4e2d", "\U0001f600", "\x7f", *string.punctuation])
def test_no_character_a_body_may_hold_costs_more_than_five_bytes_written(
    measure: Any, char: str,
) -> None:
    """So every message SQS accepts (1 MiB) fits one response alone, in either protocol."""
    count = 1000
    empty = measure(shapes.received(message("")))
    full = measure(shapes.received(message(char * count)))
    assert (full - empty) / (len(char.encode("utf-8")) * count) <= 5


def test_a_one_mib_message_of_the_costliest_character_fits_the_proxy_alone() -> None:
    for measure, char in ((json10.message_size, '"'), (query.message_size, "&")):
        assert measure(shapes.received(message(char * 1_048_576))) < LAMBDA_MB - 2000


def test_the_budget_takes_messages_while_they_fit_and_the_first_one_always() -> None:
    budget = ResponseBudget(100, json10.message_size)
    big = message("x" * 500)
    assert budget.admit(big)  # alone over the limit: still answered
    assert not budget.admit(message("y"))
    small = ResponseBudget(10_000, json10.message_size)
    assert all(small.admit(message("z" * 100)) for _ in range(10))


def test_a_message_is_written_once_for_the_budget_and_the_response() -> None:
    budget = ResponseBudget(10_000, query.message_size)
    got = message("body & more")
    budget.admit(got)
    assert budget.written(got) is budget.written(got)
    assert budget.written(got) == shapes.received(got)


def test_a_query_receive_answered_as_json_is_measured_as_json() -> None:
    """A body of quotes is small in XML but doubles in JSON: a query client that accepts
    JSON gets a JSON answer, so its receive is measured as JSON, never as XML."""
    quotes = message('"' * 1000)
    limit = json10.message_size(shapes.received(quotes)) + 10
    assert query.message_size(shapes.received(quotes)) < limit - 1000
    params = {"Action": ["ReceiveMessage"]}
    as_json = wire_for("GET", {"Accept": "application/json"}, params).budget(limit)
    as_xml = wire_for("GET", {}, params).budget(limit)
    for budget in (as_json, as_xml):
        assert budget.admit(message("first"))
    assert not as_json.admit(quotes)
    assert as_xml.admit(quotes)
