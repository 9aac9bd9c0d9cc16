"""Reading request parameters: JSON-1.0-shaped values, from either protocol.

Both protocols hand the domain the same ``params`` (the query protocol's are
converted from botocore's model first), so an action reads them once, here, and
gets SQS's own error for a value of the wrong type or out of range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib import errors
from chalicelib.errors import invalid_value


def opt_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_value(name, value, "Must be a string.")
    return value


def require_str(params: Mapping[str, Any], name: str) -> str:
    """A required string; absent, null or empty is ``MissingParameter``."""
    value = opt_str(params, name)
    if not value:
        raise errors.missing_parameter(name)
    return value


def opt_int(
    params: Mapping[str, Any],
    name: str,
    low: int,
    high: int,
    reason: str | None = None,
) -> int | None:
    """An optional JSON integer within ``[low, high]``; bools, floats and strings are refused."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_value(name, value, "Must be an integer.")
    if not low <= value <= high:
        raise invalid_value(
            name, value, reason or f"Must be between {low} and {high}, if provided."
        )
    return value


def require_int(
    params: Mapping[str, Any], name: str, low: int, high: int, reason: str | None = None
) -> int:
    value = opt_int(params, name, low, high, reason)
    if value is None:
        raise errors.missing_parameter(name)
    return value


def opt_str_list(params: Mapping[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_value(name, value, "Must be a list of strings.")
    return list(value)


def opt_str_map(params: Mapping[str, Any], name: str) -> dict[str, str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid_value(name, value, "Must be a map of strings to strings.")
    return dict(value)


def opt_object(params: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_value(name, value, "Must be an object.")
    return value


def opt_list(params: Mapping[str, Any], name: str) -> list[Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid_value(name, value, "Must be a list.")
    return value
