"""Lambda's filter criteria, applied to a message as it is opened.

A trigger's filters are Lambda's ``FilterCriteria`` patterns (the EventBridge rule
syntax Lambda documents for event source mappings). A mapping on a backing queue
could only ever see ciphertext; sealq matches the opened record: ``body`` (parsed as
JSON when the pattern's ``body`` is an object and the body is a JSON object, else
the body text), and, beyond what Lambda offers for SQS, ``attributes`` and
``messageAttributes``. A record is delivered when any pattern matches; one no
pattern matches is deleted unseen, as Lambda deletes it.

Understood, as Lambda documents them: exact values (strings, numbers, booleans,
null), ``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but`` (a value, a
list, or a ``prefix`` / ``suffix``), ``numeric`` (``=``, ``<``, ``<=``, ``>``, ``>=``,
up to two comparisons), ``exists``, and ``$or``. Anything else is refused when the
trigger is created, never ignored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

MAX_FILTERS = 5
MAX_PATTERN_BYTES = 4096
_NUMERIC_OPS = frozenset({"=", "<", "<=", ">", ">="})
_OPERATORS = frozenset({"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric",
                        "exists"})


class FilterError(ValueError):
    """A pattern Lambda would not accept (the message says why)."""


def parse(pattern: str) -> dict[str, Any]:
    """One ``Filters[].Pattern``, checked; FilterError when Lambda would refuse it."""
    if len(pattern.encode("utf-8")) > MAX_PATTERN_BYTES:
        raise FilterError(f"A filter pattern is at most {MAX_PATTERN_BYTES} bytes.")
    try:
        parsed = json.loads(pattern)
    except ValueError:
        raise FilterError("Invalid filter pattern definition.") from None
    if not isinstance(parsed, dict) or not parsed:
        raise FilterError("Invalid filter pattern definition.")
    _check(parsed)
    return parsed


def _check(node: Mapping[str, Any]) -> None:
    for key, value in node.items():
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise FilterError("$or takes a list of at least two patterns.")
            for branch in value:
                if not isinstance(branch, dict):
                    raise FilterError("Invalid filter pattern definition.")
                _check(branch)
        elif isinstance(value, dict):
            _check(value)
        elif isinstance(value, list):
            if not value:
                raise FilterError(f"Empty match list for {key}.")
            for rule in value:
                _check_rule(rule)
        else:
            raise FilterError(f"Match value for {key} must be an array or an object.")


def _check_rule(rule: Any) -> None:
    if not isinstance(rule, dict):
        if isinstance(rule, list):
            raise FilterError("Invalid filter pattern definition.")
        return  # an exact value
    if len(rule) != 1 or next(iter(rule)) not in _OPERATORS:
        raise FilterError(f"Unrecognized match type {next(iter(rule), '')}.")
    (operator, operand), = rule.items()
    if operator in ("prefix", "suffix", "equals-ignore-case") and not isinstance(operand, str):
        raise FilterError(f"{operator} match pattern must be a string.")
    if operator == "exists" and not isinstance(operand, bool):
        raise FilterError("exists match pattern must be either true or false.")
    if operator == "numeric":
        _numeric_rule(operand)
    if operator == "anything-but":
        if isinstance(operand, dict):
            if len(operand) != 1 or next(iter(operand)) not in ("prefix", "suffix") or \
                    not isinstance(next(iter(operand.values())), str):
                raise FilterError("anything-but takes a value, a list, a prefix or a suffix.")
        elif isinstance(operand, list):
            if not operand or any(isinstance(v, dict | list) for v in operand):
                raise FilterError("anything-but takes a value, a list, a prefix or a suffix.")


def _numeric_rule(operand: Any) -> list[tuple[str, float]]:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise FilterError("Value of numeric must be an array of one or two comparisons.")
    pairs = []
    for op, number in zip(operand[::2], operand[1::2], strict=True):
        if op not in _NUMERIC_OPS or isinstance(number, bool) or \
                not isinstance(number, int | float) or not math.isfinite(number):
            raise FilterError("Value of numeric must be an array of one or two comparisons.")
        pairs.append((op, float(number)))
    return pairs


def record_view(body: str, attributes: Mapping[str, str],
                message_attributes: Mapping[str, Any]) -> dict[str, Any]:
    """What a pattern is matched against: the Lambda record's filterable keys."""
    return {"body": body, "attributes": dict(attributes),
            "messageAttributes": dict(message_attributes)}


def matches_any(patterns: Sequence[Mapping[str, Any]], record: Mapping[str, Any]) -> bool:
    """Whether ``record`` passes: no patterns, or any one of them matching."""
    return not patterns or any(_matches(p, _decoded(p, record)) for p in patterns)


def _decoded(pattern: Mapping[str, Any], record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The record with its body parsed, when the pattern looks into a JSON body."""
    if not isinstance(pattern.get("body"), dict) or not isinstance(record.get("body"), str):
        return record
    try:
        body = json.loads(record["body"])
    except ValueError:
        return record
    return {**record, "body": body} if isinstance(body, dict) else record


def _matches(pattern: Mapping[str, Any], event: Any) -> bool:
    for key, rules in pattern.items():
        if key == "$or":
            if not any(_matches(branch, event) for branch in rules):
                return False
            continue
        present = isinstance(event, Mapping) and key in event
        value = event[key] if present else None
        if isinstance(rules, dict):
            if not present or not _matches(rules, value):
                return False
        elif not _leaf(rules, present, value):
            return False
    return True


def _leaf(rules: list[Any], present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] == (present and value is not None):
                return True
            continue
        if present and any(_rule(rule, v) for v in values):
            return True
    return False


def _rule(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return _same(rule, value)
    (operator, operand), = rule.items()
    if operator == "prefix":
        return isinstance(value, str) and value.startswith(operand)
    if operator == "suffix":
        return isinstance(value, str) and value.endswith(operand)
    if operator == "equals-ignore-case":
        return isinstance(value, str) and value.casefold() == operand.casefold()
    if operator == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return all(_compare(op, float(value), number) for op, number in _numeric_rule(operand))
    if operator == "anything-but":
        if isinstance(operand, dict):
            (kind, text), = operand.items()
            if not isinstance(value, str):
                return False
            return not (value.startswith(text) if kind == "prefix" else value.endswith(text))
        excluded = operand if isinstance(operand, list) else [operand]
        return not any(_same(e, value) for e in excluded)
    return False


def _same(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _compare(op: str, value: float, number: float) -> bool:
    return {"=": value == number, "<": value < number, "<=": value <= number,
            ">": value > number, ">=": value >= number}[op]
