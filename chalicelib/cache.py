"""A bounded, thread-safe LRU cache whose entries carry their own expiry.

Both key-cache tiers and the queue cache use it. Expiry is per entry (a data key's
deadline is set by whoever generated it, not by the cache), and an entry is never
returned at or after its expiry. ``lock_for`` gives one lock per key so that
concurrent misses on the same key do the expensive fetch once (single flight).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from chalicelib.clock import SYSTEM_CLOCK, Clock


class TTLCache[K: Hashable, V]:
    def __init__(self, max_entries: int, clock: Clock = SYSTEM_CLOCK) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[K, threading.Lock] = {}

    def get(self, key: K) -> V | None:
        """The value if present and ``now < expiry``; expired entries are dropped."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            value, expires_at = found
            if self._clock.now() >= expires_at:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V, expires_at: float) -> None:
        with self._lock:
            self._entries[key] = (value, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._key_locks.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def lock_for(self, key: K) -> threading.Lock:
        """A lock owned by ``key``: hold it around a fetch to make misses single-flight.

        Locks are kept while their key is cached or being fetched and pruned with
        the entries, so the map stays bounded by roughly ``max_entries``.
        """
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                if len(self._key_locks) > 2 * self._max:
                    for stale in [k for k, lk in self._key_locks.items()
                                  if k not in self._entries and not lk.locked()]:
                        del self._key_locks[stale]
                lock = threading.Lock()
                self._key_locks[key] = lock
            return lock
