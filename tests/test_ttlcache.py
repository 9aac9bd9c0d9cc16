"""The cache both key tiers and the queue cache stand on."""

from __future__ import annotations

import pytest

from chalicelib.cache import TTLCache
from chalicelib.clock import FakeClock


def test_an_entry_is_never_returned_at_or_after_its_expiry(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock)
    cache.put("k", 1, clock.now() + 10)
    clock.advance(9.999)
    assert cache.get("k") == 1
    clock.advance(0.001)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_the_least_recently_used_entry_goes_first(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(2, clock)
    cache.put("a", 1, clock.now() + 60)
    cache.put("b", 2, clock.now() + 60)
    assert cache.get("a") == 1  # b is now the oldest
    cache.put("c", 3, clock.now() + 60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_each_key_has_one_lock_while_it_is_in_use(clock: FakeClock) -> None:
    cache: TTLCache[int, int] = TTLCache(2, clock)
    held = cache.lock_for(1)
    with held:
        for key in range(2, 100):  # enough keys to make the cache prune its locks
            cache.lock_for(key)
        assert cache.lock_for(1) is held
    assert cache.lock_for(1) is not cache.lock_for(2)


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError):
        TTLCache(0)
