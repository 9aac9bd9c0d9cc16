"""Clocks that caches take as a parameter, so TTL tests need no sleeping.

Deadlines of data keys cross containers (the key service sets them, handlers obey
them), so they are wall-clock epoch seconds, not monotonic readings.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to; thread-safe."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class MonotonicClock:
    """Seconds on a clock that never jumps: for TTLs kept inside one container."""

    def now(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
MONOTONIC_CLOCK = MonotonicClock()
