"""Trigger targets for the end-to-end tests: Python callables the dev server invokes.

Each appends the events it gets, as JSON lines, to the file ``SEALQ_E2E_TRIGGER_LOG``
names (the test reads it back).
"""

from __future__ import annotations

import json
import os
from typing import Any


def _log(kind: str, event: dict[str, Any]) -> None:
    with open(os.environ["SEALQ_E2E_TRIGGER_LOG"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"kind": kind, "event": event}) + "\n")


def record(event: dict[str, Any], context: Any) -> None:
    """Takes every message."""
    _log("record", event)


def refuse(event: dict[str, Any], context: Any) -> None:
    """Raises, as a failing consumer does: the batch stays for redelivery."""
    _log("refuse", event)
    raise RuntimeError("this consumer refuses everything")
