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

import base64
import binascii
import itertools
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import timeouts
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.keyservice.api import (
    UNAVAILABLE,
    ContextError,
    DataKey,
    KeyServiceError,
    key_identity,
)
from chalicelib.keyservice.kms import (
    INTERNAL_FAILURE,
    INTERNAL_MESSAGE,
    UNAVAILABLE_MESSAGE,
    Kms,
)
from chalicelib.keyservice.refusals import Refusals
from chalicelib.observability.logs import log_context
from chalicelib.observability.metrics import (
    FOR_SECRETS,
    KEY_CACHE_HITS,
    KEY_CACHE_MISSES,
    KEY_SERVICE_TIER,
    NO_METRICS,
    Metrics,
)
from chalicelib.storage.errors import is_transient
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


class BadRequest(Exception):
    """The payload does not follow the wire format of :mod:`chalicelib.keyservice.api`."""


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
        self._data_keys: TTLCache[str, _Cached] = TTLCache(cache_size, clock)
        self._refused = Refusals(clock, cache_size)
        self._decrypted: TTLCache[bytes, bytes] = TTLCache(cache_size, clock)
        self._secrets: TTLCache[str, bytes] = TTLCache(SECRETS_CACHE_SIZE, clock)

    # -- the wire ---------------------------------------------------------------

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer one wire-format request; failures become ``{"error": ...}``, never raise.

        Its log lines carry the handler's ``request_id`` when the payload names one."""
        if not isinstance(payload, dict):
            return self._handle(payload)
        with log_context(request_id=_request_id(payload)):
            return self._handle(payload)

    def _handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        op = payload.get("op") if isinstance(payload, dict) else None
        try:
            if op == "data_key":
                key = self.data_key(
                    queue_arn=_str(payload, "queue_arn"),
                    cmk=_str(payload, "cmk"),
                    context=_context(payload),
                    reuse_period=_reuse_period(payload),
                )
                return {"ok": {
                    "plaintext": _b64(key.plaintext),
                    "encrypted": _b64(key.encrypted),
                    "cmk_arn": key.cmk_arn,
                    "deadline": key.deadline,
                }}
            if op == "decrypt_key":
                plaintext = self.decrypt_key(
                    encrypted=_bytes(payload, "encrypted"),
                    cmk_arn=_str(payload, "cmk_arn"),
                    context=_context(payload),
                )
                return {"ok": {"plaintext": _b64(plaintext)}}
            if op == "service_secret":
                return {"ok": {"plaintext": _b64(self.service_secret(_str(payload, "name")))}}
            if op == "seal_secret":
                sealed = self.seal_secret(
                    context=_context(payload), plaintext=_bytes(payload, "plaintext"))
                return {"ok": {"sealed": _b64(sealed)}}
            if op == "open_secret":
                plaintext = self.open_secret(
                    context=_context(payload), sealed=_bytes(payload, "sealed"))
                return {"ok": {"plaintext": _b64(plaintext)}}
            raise BadRequest("unknown op")
        except KeyServiceError as err:
            log.warning("key service %s failed: %s", _op_name(op), err.code)
            return _error(err.code, err.message)
        except (BadRequest, ContextError) as err:
            log.warning("key service got a bad request: %s", err)
            return _error(INTERNAL_FAILURE, "The key service request is malformed.")
        except Exception as err:  # the contract is: never raise
            if is_transient(err):  # DynamoDB throttled or down: the caller may retry
                log.warning("key service %s unavailable: %s", _op_name(op), _describe(err))
                return _error(UNAVAILABLE, UNAVAILABLE_MESSAGE)
            log.error("key service %s failed: %s", _op_name(op), _describe(err))
            return _error(INTERNAL_FAILURE, INTERNAL_MESSAGE)

    # -- data keys --------------------------------------------------------------

    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        """The current data key of (queue_arn, cmk, context), with more than MARGIN seconds
        left. The context is part of the slot: a key is only ever used under the context
        it was generated for (a queue re-created under its name has a new one)."""
        record_id = data_key_id(queue_arn, cmk, context)
        slot = record_id
        hit = self._cached_data_key(slot, reuse_period)
        if hit is not None:
            return self._hit(hit)
        self._refused.check(slot)
        with self._data_keys.lock_for(slot):
            hit = self._cached_data_key(slot, reuse_period)
            if hit is not None:
                return self._hit(hit)  # another thread just loaded it
            self._refused.check(slot)
            self._metrics.add(KEY_CACHE_MISSES, Tier=KEY_SERVICE_TIER)
            try:
                cached = self._fetch_data_key(record_id, queue_arn, cmk, context, reuse_period)
            except KeyServiceError as err:
                self._refused.remember(slot, err)
                raise
            self._data_keys.put(slot, cached, cached.key.deadline - MARGIN)
            return cached.usable(reuse_period)

    def _cached_data_key(self, slot: str, reuse_period: int) -> DataKey | None:
        cached = self._data_keys.get(slot)
        if cached is None:
            return None
        key = cached.usable(reuse_period)
        return key if key.deadline - MARGIN > self._clock.now() else None

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
                plaintext, _ = self._decrypt_cached(found.encrypted, found.cmk_arn, context)
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
        except (ClientError, BotoCoreError) as err:
            log.warning("could not release a key lease (it will expire): %s", _describe(err))

    # -- decrypting -------------------------------------------------------------

    def decrypt_key(self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
        """The plaintext of an encrypted data key; KMS is asked once per decrypt_ttl."""
        plaintext, hit = self._decrypt_cached(encrypted, cmk_arn, context)
        self._metrics.add(KEY_CACHE_HITS if hit else KEY_CACHE_MISSES, Tier=KEY_SERVICE_TIER)
        return plaintext

    def _decrypt_cached(
        self, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]
    ) -> tuple[bytes, bool]:
        """The plaintext, and whether it came from the cache."""
        digest = key_identity(encrypted=encrypted, cmk_arn=cmk_arn, context=context)
        found = self._decrypted.get(digest)
        if found is not None:
            return found, True
        self._refused.check(digest)
        with self._decrypted.lock_for(digest):
            found = self._decrypted.get(digest)
            if found is not None:
                return found, True
            self._refused.check(digest)
            try:
                plaintext = self._kms.decrypt(encrypted, cmk_arn, context)
            except KeyServiceError as err:
                self._refused.remember(digest, err)
                raise
            self._decrypted.put(digest, plaintext, self._clock.now() + self._decrypt_ttl)
            return plaintext, False

    def _hit(self, key: DataKey) -> DataKey:
        self._metrics.add(KEY_CACHE_HITS, Tier=KEY_SERVICE_TIER)
        return key

    # -- service secrets --------------------------------------------------------

    def service_secret(self, name: str) -> bytes:
        """A stable 32-byte secret: created once fleet-wide, cached for the container's life."""
        found = self._secrets.get(name)
        if found is not None:
            return found
        with self._secrets.lock_for(name):
            found = self._secrets.get(name)
            if found is not None:
                return found
            plaintext = self._load_or_create_secret(name)
            self._secrets.put(name, plaintext, math.inf)
            return plaintext

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


# -- payload parsing -----------------------------------------------------------------


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _request_id(payload: Mapping[str, Any]) -> str | None:
    """The caller's request id if it is one (a UUID): nothing else reaches a log line."""
    value = payload.get("request_id")
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


def _op_name(op: object) -> str:
    known = ("data_key", "decrypt_key", "service_secret", "seal_secret", "open_secret")
    return op if op in known else "request"


def _describe(err: BaseException) -> str:
    """An error's type and AWS code only: AWS messages can quote request values."""
    if isinstance(err, ClientError):
        return f"{type(err).__name__} {err.response.get('Error', {}).get('Code', '')}"
    return type(err).__name__


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _str(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string")
    return value


def _bytes(payload: Mapping[str, Any], name: str) -> bytes:
    try:
        value = base64.b64decode(_str(payload, name), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{name} must be base64") from None
    if not value:
        raise BadRequest(f"{name} must not be empty")
    return value


def _context(payload: Mapping[str, Any]) -> dict[str, str]:
    value = payload.get("context")
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadRequest("context must be an object of strings")
    return dict(value)


def _reuse_period(payload: Mapping[str, Any]) -> int:
    value = payload.get("reuse_period")
    low, high = REUSE_PERIOD_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"reuse_period must be an integer from {low} to {high}")
    return value
