"""SQS's rules for queues by name: queue names, queue URLs, tags.

Pure validators raising :class:`SqsError` with SQS's codes and texts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from urllib.parse import urlsplit

from chalicelib import errors
from chalicelib.errors import invalid_value

MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_FIFO_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo")


def validate_queue_name(name: str, fifo: bool) -> None:
    """1-80 of ``[A-Za-z0-9_-]``; FIFO queues (only they) end in ``.fifo``, counted."""
    if fifo:
        if not _FIFO_QUEUE_NAME.fullmatch(name):
            raise errors.invalid_parameter_value(
                "The name of a FIFO queue can only include alphanumeric characters, "
                "hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
    elif not _QUEUE_NAME.fullmatch(name):
        raise errors.invalid_parameter_value(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
        )


# -- queue URLs -----------------------------------------------------------------------

_ACCOUNT = re.compile(r"[0-9]{12}")


def parse_queue_url(url: object) -> tuple[str, str] | None:
    """``(account, name)`` from the last two path segments of a QueueUrl, or None.

    Never raises: anything that is not ``.../{12-digit account}/{queue name}`` (a bare
    name, a malformed URL such as ``http://[::1/x``, a non-string) is None and the
    caller answers QueueDoesNotExist. Host and any stage prefix are not checked.
    """
    if not isinstance(url, str):
        return None
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    parts = [part for part in path.split("/") if part]
    if len(parts) < 2:
        return None
    account, name = parts[-2], parts[-1]
    if not _ACCOUNT.fullmatch(account):
        return None
    if not (_QUEUE_NAME.fullmatch(name) or _FIFO_QUEUE_NAME.fullmatch(name)):
        return None
    return account, name


# -- tags -------------------------------------------------------------------------------
#
# SQS Developer Guide, "Quotas related to queues", Queue tag: keys 1-128 and values
# 0-256 Unicode characters; Unicode letters, digits, whitespace and ``_ . : / = + - @``;
# no ``aws:`` prefix; no more than 50 tags. The general AWS tagging pattern is
# ``[\p{L}\p{Z}\p{N}_.:/=+\-@]*``: whitespace means category Z, so tabs, newlines,
# other control characters and lone surrogates are refused.

_TAG_SYMBOLS = frozenset("_.:/=+-@")
_TAG_CHARS_TEXT = "unicode letters, digits, whitespace, or one of these symbols: _ . : / = + - @"


def _is_tag_text(text: str) -> bool:
    return all(
        char in _TAG_SYMBOLS or unicodedata.category(char)[0] in "LNZ" for char in text
    )


def _check_tag_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY:
        raise errors.invalid_parameter_value(
            "Tag keys must be between 1 and 128 characters in length."
        )
    if not _is_tag_text(key):
        raise errors.invalid_parameter_value(f"Tag keys may only contain {_TAG_CHARS_TEXT}")
    if key.lower().startswith("aws:"):
        raise errors.invalid_parameter_value(
            "Tag keys must not begin with the prefix aws:, which is reserved for AWS use."
        )
    return key


def validate_tags(
    tags: object,
    *,
    existing: Mapping[str, str] | None = None,
    queue_name: str = "",
) -> dict[str, str]:
    """Tags of TagQueue / CreateQueue: returns ``existing`` updated with ``tags``.

    Every key and value is checked before anything is merged; the merged set may hold
    at most :data:`MAX_TAGS` tags. ``None`` (no tags given) returns a copy of
    ``existing``; whether an absent map is an error is the caller's decision.
    """
    merged = dict(existing or {})
    if tags is None:
        return merged
    if not isinstance(tags, dict):
        raise invalid_value("Tags", tags, "Must be a map of strings to strings.")
    for key, value in tags.items():
        _check_tag_key(key)
        if not isinstance(value, str):
            raise invalid_value("Tags", value, "Must be a map of strings to strings.")
        if len(value) > MAX_TAG_VALUE:
            raise errors.invalid_parameter_value(
                "Tag values must be between 0 and 256 characters in length."
            )
        if not _is_tag_text(value):
            raise errors.invalid_parameter_value(f"Tag values may only contain {_TAG_CHARS_TEXT}")
    merged.update(tags)
    if len(merged) > MAX_TAGS:
        raise errors.invalid_parameter_value(f"Too many tags added for queue {queue_name}.")
    return merged


def validate_tag_keys(keys: object) -> list[str]:
    """TagKeys of UntagQueue: a non-empty list of keys, each as TagQueue would accept."""
    if keys is None:
        raise errors.missing_parameter("TagKeys")
    if not isinstance(keys, list):
        raise invalid_value("TagKeys", keys, "Must be a list of strings.")
    if not keys:
        raise errors.invalid_parameter_value(
            "Tag keys must be between 1 and 128 characters in length."
        )
    return [_check_tag_key(key) for key in keys]
