"""The ReceiveMessage response budget: how many received messages fit one answer.

Lambda refuses a response over 6 MB (API Gateway then answers 502), and what it
measures is the proxy response: the SQS answer as text inside the proxy's JSON, so
encoded a second time (invariant 13). So each message is measured as the protocol
being answered writes it, then as the Lambda runtime writes that text (python3.12
and newer: JSON with non-ASCII as UTF-8, each quote and backslash, newline and tab
one byte more). Fewer messages are returned rather than overflow; the rest are
handed back at once. The first message is always taken: every message SQS accepts
(at most 1 MiB) fits alone, since no character costs more than five bytes written
(``&`` as ``&amp;`` in XML; ``"`` as ``\\\\\\"`` in JSON takes four).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from chalicelib.domain.results import Received
from chalicelib.protocol import shapes

type Measure = Callable[[dict[str, Any]], int]

# What JSON writes as a backslash and one letter, and what it writes as \\u00XX.
_SHORT_ESCAPES = ('"', "\\", "\n", "\r", "\t", "\b", "\f")
_OTHER_CONTROLS = re.compile("[\x00-\x07\x0b\x0e-\x1f]")


def proxied(text: str) -> int:
    """Bytes ``text`` takes inside the proxy response's JSON string, as the Lambda
    runtime encodes it: UTF-8, ``"`` and ``\\`` and the control characters with a
    short escape (``\\n`` ...) in two bytes, any other control character in six."""
    size = len(text.encode("utf-8"))
    size += sum(text.count(char) for char in _SHORT_ESCAPES)
    return size + 5 * len(_OTHER_CONTROLS.findall(text))


class ResponseBudget:
    """Room for received messages, measured with one protocol's writer."""

    def __init__(self, limit: int, measure: Measure) -> None:
        self._left = limit
        self._measure = measure
        self._written: list[tuple[Received, dict[str, Any]]] = []

    def admit(self, message: Received) -> bool:
        """Take ``message`` if it fits what is left (the first one always)."""
        written = shapes.received(message)
        size = self._measure(written)
        if size > self._left and self._written:
            return False
        self._left -= size
        self._written.append((message, written))
        return True

    def written(self, message: Received) -> dict[str, Any]:
        """The ``Message`` structure measured for ``message`` (written once, not twice)."""
        for admitted, written in self._written:
            if admitted is message:
                return written
        return shapes.received(message)
