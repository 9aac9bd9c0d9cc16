"""The one read-through cache every cache of sealq is: expiry, single flight, failures."""

from __future__ import annotations

import threading

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


class Boom(Exception):
    pass


def test_concurrent_misses_of_one_key_load_it_once(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock)
    loads: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def load() -> tuple[int, float]:
        loads.append(1)
        started.set()
        release.wait(5)
        return 7, clock.now() + 60

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_load("k", load)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    assert started.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [7] * 8
    assert len(loads) == 1


def test_loads_of_different_keys_do_not_wait_for_each_other(clock: FakeClock) -> None:
    cache: TTLCache[str, str] = TTLCache(4, clock)
    slow_started = threading.Event()
    release = threading.Event()

    def slow() -> tuple[str, float]:
        slow_started.set()
        release.wait(5)
        return "slow", clock.now() + 60

    thread = threading.Thread(target=cache.get_or_load, args=("a", slow))
    thread.start()
    assert slow_started.wait(5)
    assert cache.get_or_load("b", lambda: ("fast", clock.now() + 60)) == "fast"
    release.set()
    thread.join(5)


def test_a_loaded_value_is_served_until_the_expiry_its_load_gave(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock)
    calls = iter(range(10))

    def load() -> tuple[int, float]:
        return next(calls), clock.now() + 30

    assert cache.get_or_load("k", load) == 0
    clock.advance(29.9)
    assert cache.get_or_load("k", load) == 0
    clock.advance(0.1)
    assert cache.get_or_load("k", load) == 1


def test_a_value_its_caller_finds_unusable_is_loaded_again(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock)
    cache.get_or_load("k", lambda: (1, clock.now() + 60))
    assert cache.get_or_load("k", lambda: (2, clock.now() + 60), valid=lambda v: v > 1) == 2
    assert cache.get("k") == 2


def test_hits_and_misses_are_counted_a_failed_load_as_a_miss(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock)
    seen: list[bool] = []

    def fail() -> tuple[int, float]:
        raise Boom()

    with pytest.raises(Boom):
        cache.get_or_load("k", fail, counted=seen.append)
    cache.get_or_load("k", lambda: (1, clock.now() + 60), counted=seen.append)
    cache.get_or_load("k", lambda: (2, clock.now() + 60), counted=seen.append)
    assert seen == [False, False, True]


def test_a_failure_is_not_cached_unless_the_cache_remembers_it(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock)
    attempts: list[int] = []

    def fail() -> tuple[int, float]:
        attempts.append(1)
        raise Boom()

    for _ in range(3):
        with pytest.raises(Boom):
            cache.get_or_load("k", fail)
    assert len(attempts) == 3


def test_a_remembered_failure_is_raised_without_a_load_until_it_expires(
    clock: FakeClock,
) -> None:
    cache: TTLCache[str, int] = TTLCache(
        4, clock, remember=lambda err: 5.0 if isinstance(err, Boom) else None)
    attempts: list[int] = []

    def fail() -> tuple[int, float]:
        attempts.append(1)
        raise Boom("refused")

    with pytest.raises(Boom):
        cache.get_or_load("k", fail)
    clock.advance(4.9)
    with pytest.raises(Boom) as again:
        cache.get_or_load("k", lambda: (1, clock.now() + 60))
    assert str(again.value) == "refused" and len(attempts) == 1
    clock.advance(0.1)
    assert cache.get_or_load("k", lambda: (1, clock.now() + 60)) == 1


def test_a_remembered_failure_is_raised_as_a_copy_to_each_caller(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock, remember=lambda err: 5.0)

    def fail() -> tuple[int, float]:
        raise Boom("refused")

    with pytest.raises(Boom) as first:
        cache.get_or_load("k", fail)
    with pytest.raises(Boom) as second:
        cache.get_or_load("k", fail)
    with pytest.raises(Boom) as third:
        cache.get_or_load("k", fail)
    assert second.value is not third.value and first.value is not second.value


def test_clear_forgets_values_and_remembered_failures(clock: FakeClock) -> None:
    cache: TTLCache[str, int] = TTLCache(4, clock, remember=lambda err: 60.0)
    cache.put("v", 1, clock.now() + 60)

    def fail() -> tuple[int, float]:
        raise Boom()

    with pytest.raises(Boom):
        cache.get_or_load("f", fail)
    cache.clear()
    assert cache.get("v") is None
    assert cache.get_or_load("f", lambda: (2, clock.now() + 60)) == 2


def test_a_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError):
        TTLCache(0)
