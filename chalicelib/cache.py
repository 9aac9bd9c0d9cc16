"""The one read-through cache: bounded, thread-safe, each entry with its own expiry.

Every cache of sealq is one of these: both key-cache tiers, the access keys and
allowed CMKs of a handler, the queue records. Expiry is per entry (a data key's
deadline is set by whoever generated it, not by the cache), and an entry is never
returned at or after its expiry. :meth:`TTLCache.get_or_load` is the only way a miss
is filled: concurrent misses on one key wait on that key's lock and the load runs
once (single flight); a failure the cache was told to remember is raised again,
without a new load, until its own expiry (negative caching).
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

from chalicelib.clock import SYSTEM_CLOCK, Clock

# (value, expires_at): what a load returns; expires_at on the cache's clock.
type Loaded[V] = tuple[V, float]


def remember_nothing(_err: Exception) -> float | None:
    """No failure is remembered: every miss after a failure loads again."""
    return None


class TTLCache[K: Hashable, V]:
    """``get_or_load(key, load)`` caches ``load()``'s value until the expiry it returns.

    ``remember(err)`` says for how many seconds a failure of ``load`` is remembered
    (None: not at all); a remembered failure is raised to every caller of its key
    until then, as a copy, so no caller's traceback grows another's.
    """

    def __init__(
        self, max_entries: int, clock: Clock = SYSTEM_CLOCK, *,
        remember: Callable[[Exception], float | None] = remember_nothing,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max = max_entries
        self._clock = clock
        self._remember = remember
        self._entries: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._failures: OrderedDict[K, tuple[Exception, float]] = OrderedDict()
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

    def get_or_load(
        self, key: K, load: Callable[[], Loaded[V]], *,
        valid: Callable[[V], bool] | None = None,
        counted: Callable[[bool], None] | None = None,
    ) -> V:
        """The cached value of ``key``, else ``load()``'s, loaded once for all callers.

        ``valid(value)`` can refuse a cached value before its expiry (e.g. a data key
        too close to a deadline that depends on the caller); a refused value is loaded
        again. ``counted(hit)`` is told whether the value came from the cache (a miss
        before its load runs, so a failed load is a miss too).
        """
        found = self._usable(key, valid)
        if found is None:
            with self._lock_for(key):
                found = self._usable(key, valid)  # another caller may just have loaded it
                if found is None:
                    if counted is not None:
                        counted(False)
                    return self._load(key, load)
        if counted is not None:
            counted(True)
        return found

    def _usable(self, key: K, valid: Callable[[V], bool] | None) -> V | None:
        self._raise_remembered(key)
        found = self.get(key)
        if found is not None and valid is not None and not valid(found):
            return None
        return found

    def _load(self, key: K, load: Callable[[], Loaded[V]]) -> V:
        try:
            value, expires_at = load()
        except Exception as err:
            seconds = self._remember(err)
            if seconds is not None:
                with self._lock:
                    self._failures[key] = (err, self._clock.now() + seconds)
                    self._failures.move_to_end(key)
                    while len(self._failures) > self._max:
                        self._failures.popitem(last=False)
            raise
        self.put(key, value, expires_at)
        return value

    def _raise_remembered(self, key: K) -> None:
        with self._lock:
            found = self._failures.get(key)
            if found is None:
                return
            err, until = found
            if self._clock.now() >= until:
                del self._failures[key]
                return
        raise copy.copy(err).with_traceback(None)

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
        """Forget every value and remembered failure (tests; a moto backend reset)."""
        with self._lock:
            self._entries.clear()
            self._failures.clear()
            self._key_locks.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _lock_for(self, key: K) -> threading.Lock:
        """The lock a miss of ``key`` is loaded under. Locks are kept while their key is
        cached or being loaded and pruned with the entries, so the map stays bounded
        by roughly ``max_entries``."""
        with self._lock:
            lock = self._key_locks.get(key)
            if lock is None:
                if len(self._key_locks) > 2 * self._max:
                    for stale in [k for k, held in self._key_locks.items()
                                  if k not in self._entries and not held.locked()]:
                        del self._key_locks[stale]
                lock = threading.Lock()
                self._key_locks[key] = lock
            return lock
