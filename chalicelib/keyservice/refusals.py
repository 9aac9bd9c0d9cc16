"""Negative caching: a key that KMS refused is not asked for again for a few seconds.

Both tiers keep one (handler and key service), so a disabled or deleted key costs
one KMS call per tier and window, not one per request (a queue full of messages
under a disabled key would otherwise cost a Decrypt per message and receive).
Only refusals about the key itself are remembered; throttling and outages are not.
"""

from __future__ import annotations

from collections.abc import Hashable

from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.keyservice.api import KeyServiceError

# Seconds a refusal is remembered: long enough to spare KMS a burst, short enough
# that a key enabled again is used again almost at once.
REFUSAL_TTL = 5.0
REMEMBERED = frozenset({
    "KmsDisabled", "KmsNotFound", "KmsAccessDenied", "KmsInvalidState",
    "KmsInvalidKeyUsage", "KmsOptInRequired", "InvalidCiphertext",
})


class Refusals:
    def __init__(self, clock: Clock, max_entries: int = 4096, ttl: float = REFUSAL_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._cache: TTLCache[Hashable, KeyServiceError] = TTLCache(max_entries, clock)

    def check(self, key: Hashable) -> None:
        """Raise the refusal remembered for ``key``, if any."""
        found = self._cache.get(key)
        if found is not None:
            raise KeyServiceError(found.code, found.message)

    def remember(self, key: Hashable, err: KeyServiceError) -> None:
        if err.code in REMEMBERED:
            self._cache.put(key, err, self._clock.now() + self._ttl)

    def clear(self) -> None:
        self._cache.clear()
