"""The handler's view of access keys: what SigV4 verification needs, cached.

Warm path: no DynamoDB and no key-service call. Per container, an access key's
record (account, status, sealed secret) is cached for ``ttl`` seconds
(``SEALQ_AUTH_CACHE_TTL``, default 30: a deactivated or deleted key stops working
within it everywhere); an unknown key id for at most ``NEGATIVE_TTL``. The signing
key derived for (key, date, region, service) is cached until the record changes:
the secret itself is held only while the key is derived. A store or key-service
failure propagates, so the request is refused, never served anonymously.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from chalicelib.auth.sigv4 import ResolvedKey, Scope, UnknownAccessKey, derive_signing_key
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.keyservice.api import SecretService, secret_context
from chalicelib.storage.ports import AccessKey, AccountStore

DEFAULT_TTL = 30.0
NEGATIVE_TTL = 5.0
# A signing key is good for one UTC day; keep it a little longer than a day's requests.
SIGNING_KEY_TTL = 26 * 3600.0


@dataclass(frozen=True)
class _Record:
    key: AccessKey | None
    digest: bytes = field(default=b"")


class AccessKeyCache:
    """``SigningKeys`` over the account store and the key service; thread-safe."""

    def __init__(
        self, store: AccountStore, secrets: SecretService, *, clock: Clock,
        ttl: float = DEFAULT_TTL, max_entries: int = 1024,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._clock = clock  # monotonic: every expiry here is local to the container
        self._ttl = ttl
        self._records: TTLCache[str, _Record] = TTLCache(max_entries, clock)
        self._signing: TTLCache[tuple[str, bytes, str, str, str], bytes] = TTLCache(
            max_entries * 2, clock)

    def resolve(self, scope: Scope) -> ResolvedKey:
        record = self._records.get_or_load(
            scope.access_key_id, lambda: self._load_record(scope.access_key_id))
        if record.key is None or not record.key.active:
            raise UnknownAccessKey(scope.access_key_id)
        key = record.key

        def derive() -> tuple[bytes, float]:
            secret = self._secrets.open_secret(
                context=secret_context(scope.access_key_id), sealed=key.sealed_secret,
            ).decode("ascii")
            derived = derive_signing_key(secret, scope.date, scope.region, scope.service)
            del secret
            return derived, self._clock.now() + SIGNING_KEY_TTL

        slot = (scope.access_key_id, record.digest, scope.date, scope.region, scope.service)
        return ResolvedKey(key.account, self._signing.get_or_load(slot, derive))

    def _load_record(self, access_key_id: str) -> tuple[_Record, float]:
        key = self._store.get_key(access_key_id)
        if key is None:
            return _Record(None), self._clock.now() + min(self._ttl, NEGATIVE_TTL)
        digest = hashlib.sha256(key.sealed_secret).digest()
        return _Record(key, digest), self._clock.now() + self._ttl

    def clear(self) -> None:
        self._records.clear()
        self._signing.clear()
