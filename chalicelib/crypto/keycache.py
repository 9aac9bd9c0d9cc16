"""The message handler's tier-1 cache of data keys (warm container, per-key deadline).

It keeps KMS and the key service off the per-message path (invariant 5) while
never handing out a data key at or after its deadline (invariant 1). Misses are
single-flight per key, so a burst of cold threads costs one key-service call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from chalicelib.cache import TTLCache
from chalicelib.clock import SYSTEM_CLOCK, Clock
from chalicelib.keyservice.api import (
    DataKey,
    KeyService,
    KeyServiceError,
    key_identity,
    refusal_ttl,
)
from chalicelib.observability.metrics import (
    HANDLER_TIER,
    KEY_CACHE_HITS,
    KEY_CACHE_MISSES,
    NO_METRICS,
    Metrics,
)

# Canonical, hashable form of an encryption context: sorted (key, value) pairs.
_Context = tuple[tuple[str, str], ...]


def _canonical(context: Mapping[str, str]) -> _Context:
    return tuple(sorted(context.items()))


class HandlerKeyCache:
    """Data keys for sealing per (queue, CMK), and plaintexts of encrypted keys for opening.

    Thread-safe (``chalice local`` serves each request on its own thread). Holds
    plaintext keys in memory only; ``clear()`` drops them (tests, moto resets).
    """

    def __init__(
        self,
        service: KeyService,
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_entries: int,
        decrypt_ttl: float,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an integer of at least 1, got {max_entries!r}")
        if (
            isinstance(decrypt_ttl, bool)
            or not isinstance(decrypt_ttl, int | float)
            or not math.isfinite(decrypt_ttl)
            or decrypt_ttl < 0
        ):
            raise ValueError(f"decrypt_ttl must be a finite number >= 0, got {decrypt_ttl!r}")
        self._service = service
        self._clock = clock
        self._metrics = metrics
        self._decrypt_ttl = float(decrypt_ttl)
        # Cache keys include the context: a key generated under another context would
        # make a message that the stock KMS provider cannot open (invariant 3).
        # A key KMS refused is not asked for again for a few seconds (negative caching).
        self._encrypt: TTLCache[tuple[str, str, _Context], DataKey] = TTLCache(
            max_entries, clock, remember=refusal_ttl)
        self._decrypt: TTLCache[bytes, bytes] = TTLCache(max_entries, clock,
                                                         remember=refusal_ttl)

    def encryption_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        """The data key to seal with now; ``clock.now() < deadline`` holds on return.

        Raises KeyServiceError as the service raised it, or with code InternalFailure
        if the service keeps handing out keys that are already past their deadline.
        """

        def load() -> tuple[DataKey, float]:
            # A key service whose clock runs ahead (or whose current key just ran out)
            # can hand out a key that is already expired here: ask once more, then fail.
            for _ in range(2):
                key = self._service.data_key(
                    queue_arn=queue_arn, cmk=cmk, context=context, reuse_period=reuse_period)
                now = self._clock.now()
                # Seed the decrypt side: opening our own messages never asks the service.
                self._decrypt.put(
                    key_identity(encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=context),
                    key.plaintext, now + self._decrypt_ttl)
                if now < key.deadline:
                    return key, key.deadline
            raise KeyServiceError(
                "InternalFailure", "the key service returned a data key past its deadline")

        return self._encrypt.get_or_load(
            (queue_arn, cmk, _canonical(context)), load, counted=self._count)

    def decryption_key(
        self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]
    ) -> bytes:
        """The plaintext of an encrypted data key; asks the key service only on a miss."""

        def load() -> tuple[bytes, float]:
            plaintext = self._service.decrypt_key(
                encrypted=encrypted, cmk_arn=cmk_arn, context=context)
            return plaintext, self._clock.now() + self._decrypt_ttl

        identity = key_identity(encrypted=encrypted, cmk_arn=cmk_arn, context=context)
        return self._decrypt.get_or_load(identity, load, counted=self._count)

    def _count(self, hit: bool) -> None:
        self._metrics.add(KEY_CACHE_HITS if hit else KEY_CACHE_MISSES, Tier=HANDLER_TIER)

    def clear(self) -> None:
        """Forget every key (tests; a moto backend reset)."""
        self._encrypt.clear()
        self._decrypt.clear()
