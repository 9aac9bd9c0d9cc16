"""The key service core (the patent's metadata service): tier-2 cache, records, KMS.

Promises:

* Fleet-wide, at most one GenerateDataKey per (queue, CMK) per reuse period: a
  conditional lease in DynamoDB elects the generator, the rest wait for its record.
* A container never calls Decrypt for a key it generated, and decrypts any other
  key at most once per ``decrypt_ttl``.
* A data key is handed out only while more than :data:`MARGIN` seconds of its
  deadline remain, so a handler always gets a usable key.
* :meth:`KeyServiceCore.handle` never raises, and no error or log line carries key
  material.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import timeouts
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.keyservice.api import (
    UNAVAILABLE,
    DataKey,
    KeyServiceError,
    key_identity,
    refusal_ttl,
)
from chalicelib.keyservice.kms import (
    INTERNAL_FAILURE,
    INTERNAL_MESSAGE,
    Kms,
)
from chalicelib.observability.metrics import (
    FOR_SECRETS,
    KEY_CACHE_HITS,
    KEY_CACHE_MISSES,
    KEY_SERVICE_TIER,
    NO_METRICS,
    Metrics,
)
from chalicelib.storage.errors import StorageError
from chalicelib.storage.key_records import (
    KeyRecord,
    KeyRecords,
    data_key_id,
    secret_id,
)

log = logging.getLogger("sealq.keyservice")

# Seconds of life a data key must have left to be handed out (either from the
# tier-2 cache or from the record); below it the key is treated as expired, which
# also absorbs small clock differences between containers.
MARGIN = 2.0
# The lease and the wait for another container's lease fit the function's own
# timeout (see chalicelib.timeouts); a waiter that runs out gives a retryable error.
LEASE_SECONDS = timeouts.LEASE_SECONDS
POLL_INTERVAL = 0.05
MAX_WAIT = timeouts.MAX_LEASE_WAIT
REUSE_PERIOD_RANGE = (60, 86400)
# The encryption context of a deployment secret (one key; the IAM policy allows it).
SECRET_CONTEXT_KEY = "sealq:secret"
SECRETS_CACHE_SIZE = 64


@dataclass(frozen=True)
class _Cached:
    key: DataKey  # deadline as stored in the record
    generated_at: float

    def usable(self, reuse_period: float) -> DataKey:
        deadline = min(self.key.deadline, self.generated_at + reuse_period)
        return DataKey(self.key.plaintext, self.key.encrypted, self.key.cmk_arn, deadline)


class KeyServiceCore:
    """One container's key service; every collaborator is injected."""

    def __init__(
        self,
        *,
        kms: Any,
        dynamodb: Any,
        table: str,
        default_kms_key: str,
        clock: Clock,
        cache_size: int,
        decrypt_ttl: float,
        sleep: Callable[[float], None] = time.sleep,
        container_id: str | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        if decrypt_ttl < 0:
            raise ValueError(f"decrypt_ttl must not be negative, got {decrypt_ttl}")
        self._metrics = metrics
        self._kms = Kms(kms, metrics)
        self._secret_kms = Kms(kms, metrics, purpose=FOR_SECRETS)
        self._records = KeyRecords(dynamodb, table)
        self._default_kms_key = default_kms_key
        self._clock = clock
        self._decrypt_ttl = decrypt_ttl
        self._sleep = sleep
        self._container_id = container_id or uuid.uuid4().hex
        self._attempts = itertools.count()
        # A key KMS refused is not asked for again for a few seconds (negative caching).
        self._data_keys: TTLCache[str, _Cached] = TTLCache(cache_size, clock,
                                                           remember=refusal_ttl)
        self._decrypted: TTLCache[bytes, bytes] = TTLCache(cache_size, clock,
                                                           remember=refusal_ttl)
        self._secrets: TTLCache[str, bytes] = TTLCache(SECRETS_CACHE_SIZE, clock)

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer one wire-format request (:mod:`chalicelib.keyservice.wire`); never raises."""
        from chalicelib.keyservice import wire

        return wire.answer(self, payload)

    # -- data keys --------------------------------------------------------------

    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        """The current data key of (queue_arn, cmk, context), with more than MARGIN seconds
        left. The context is part of the slot: a key is only ever used under the context
        it was generated for (a queue re-created under its name has a new one)."""
        record_id = data_key_id(queue_arn, cmk, context)

        def load() -> tuple[_Cached, float]:
            cached = self._fetch_data_key(record_id, queue_arn, cmk, context, reuse_period)
            return cached, cached.key.deadline - MARGIN

        def usable(cached: _Cached) -> bool:
            return cached.usable(reuse_period).deadline - MARGIN > self._clock.now()

        cached = self._data_keys.get_or_load(record_id, load, valid=usable, counted=self._count)
        return cached.usable(reuse_period)

    def _fetch_data_key(
        self, record_id: str, queue_arn: str, cmk: str, context: Mapping[str, str],
        reuse_period: int,
    ) -> _Cached:
        """Use the record's key if valid; else generate under a lease, or wait for the winner."""
        for _ in range(math.ceil(MAX_WAIT / POLL_INTERVAL)):
            state = self._records.read(record_id)
            now = self._clock.now()
            found = state.key
            if found is not None and found.effective_deadline(reuse_period) - MARGIN > now:
                plaintext = self._decrypt_cached(found.encrypted, found.cmk_arn, context)
                return _Cached(
                    DataKey(plaintext, found.encrypted, found.cmk_arn, found.deadline),
                    found.generated_at,
                )
            if not state.lease_live(now):
                owner = f"{self._container_id}:{next(self._attempts)}"
                if self._records.take_lease(
                    record_id, owner, now=now, until=now + LEASE_SECONDS,
                    valid_after=now + MARGIN, reuse_period=reuse_period,
                ):
                    generated = self._generate(record_id, owner, cmk, context, reuse_period)
                    if generated is not None:
                        log.info("generated a data key for %s under %s", queue_arn,
                                 generated.key.cmk_arn)
                        return generated
                    continue  # lost the lease while generating: read the new record
            self._sleep(POLL_INTERVAL)
        raise KeyServiceError(UNAVAILABLE, "Timed out waiting for a data key.")

    def _generate(
        self, record_id: str, owner: str, cmk: str, context: Mapping[str, str],
        reuse_period: int,
    ) -> _Cached | None:
        """Call GenerateDataKey while holding the lease; None if the lease was lost."""
        try:
            fresh = self._kms.generate(cmk, context)
            generated_at = self._clock.now()
            record = KeyRecord(
                fresh.encrypted, fresh.key_arn, generated_at, generated_at + reuse_period
            )
            stored = self._records.complete(record_id, owner, record)
        except BaseException:
            self._release(record_id, owner)
            raise
        if not stored:
            return None
        self._decrypted.put(
            key_identity(encrypted=fresh.encrypted, cmk_arn=fresh.key_arn, context=context),
            fresh.plaintext,
            generated_at + self._decrypt_ttl,
        )
        return _Cached(
            DataKey(fresh.plaintext, fresh.encrypted, fresh.key_arn, record.deadline),
            generated_at,
        )

    def _release(self, record_id: str, owner: str) -> None:
        try:
            self._records.release(record_id, owner)
        except StorageError as err:
            log.warning("could not release a key lease (it will expire): %s %s",
                        type(err).__name__, err.code)

    # -- decrypting -------------------------------------------------------------

    def decrypt_key(self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
        """The plaintext of an encrypted data key; KMS is asked once per decrypt_ttl."""
        return self._decrypt_cached(encrypted, cmk_arn, context, counted=self._count)

    def _decrypt_cached(
        self, encrypted: bytes, cmk_arn: str, context: Mapping[str, str],
        counted: Callable[[bool], None] | None = None,
    ) -> bytes:
        def load() -> tuple[bytes, float]:
            plaintext = self._kms.decrypt(encrypted, cmk_arn, context)
            return plaintext, self._clock.now() + self._decrypt_ttl

        digest = key_identity(encrypted=encrypted, cmk_arn=cmk_arn, context=context)
        return self._decrypted.get_or_load(digest, load, counted=counted)

    def _count(self, hit: bool) -> None:
        self._metrics.add(KEY_CACHE_HITS if hit else KEY_CACHE_MISSES, Tier=KEY_SERVICE_TIER)

    # -- service secrets --------------------------------------------------------

    def service_secret(self, name: str) -> bytes:
        """A stable 32-byte secret: created once fleet-wide, cached for the container's life."""
        return self._secrets.get_or_load(
            name, lambda: (self._load_or_create_secret(name), math.inf))

    def _load_or_create_secret(self, name: str) -> bytes:
        record_id = secret_id(name)
        context = {SECRET_CONTEXT_KEY: name}
        existing = self._records.read_secret(record_id)
        if existing is None:
            fresh = self._secret_kms.generate(self._default_kms_key, context)
            if self._records.put_secret(
                record_id, fresh.encrypted, fresh.key_arn, self._clock.now()
            ):
                log.info("created service secret %s", name)
                return fresh.plaintext
            existing = self._records.read_secret(record_id)  # another container won
            if existing is None:
                raise KeyServiceError(INTERNAL_FAILURE, INTERNAL_MESSAGE)
        return self._secret_kms.decrypt(existing.encrypted, existing.cmk_arn, context)


    # -- sealed secrets (access keys) --------------------------------------------

    def seal_secret(self, *, context: Mapping[str, str], plaintext: bytes) -> bytes:
        """``plaintext`` as an ESDK envelope under the default CMK, bound to ``context``."""
        from chalicelib.keyservice import sealed_secrets as envelopes

        return envelopes.seal(self._secret_kms, self._default_kms_key, context, plaintext)

    def open_secret(self, *, context: Mapping[str, str], sealed: bytes) -> bytes:
        """The plaintext of an envelope sealed under exactly ``context`` (one KMS Decrypt)."""
        from chalicelib.keyservice import sealed_secrets as envelopes

        return envelopes.open_envelope(self._secret_kms, context, sealed)
