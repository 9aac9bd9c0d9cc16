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

from chalicelib.auth.accounts import AccessKey, AccountStore, secret_context
from chalicelib.auth.sigv4 import ResolvedKey, Scope, UnknownAccessKey, derive_signing_key
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.keyservice.api import SecretService

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
        record = self._record(scope.access_key_id)
        if record.key is None or not record.key.active:
            raise UnknownAccessKey(scope.access_key_id)
        slot = (scope.access_key_id, record.digest, scope.date, scope.region, scope.service)
        found = self._signing.get(slot)
        if found is None:
            with self._signing.lock_for(slot):
                found = self._signing.get(slot)
                if found is None:
                    secret = self._secrets.open_secret(
                        context=secret_context(scope.access_key_id),
                        sealed=record.key.sealed_secret,
                    ).decode("ascii")
                    found = derive_signing_key(secret, scope.date, scope.region, scope.service)
                    del secret
                    self._signing.put(slot, found, self._clock.now() + SIGNING_KEY_TTL)
        return ResolvedKey(record.key.account, found)

    def _record(self, access_key_id: str) -> _Record:
        found = self._records.get(access_key_id)
        if found is not None:
            return found
        with self._records.lock_for(access_key_id):
            found = self._records.get(access_key_id)
            if found is not None:
                return found
            key = self._store.get_key(access_key_id)
            if key is None:
                found = _Record(None)
                ttl = min(self._ttl, NEGATIVE_TTL)
            else:
                found = _Record(key, hashlib.sha256(key.sealed_secret).digest())
                ttl = self._ttl
            self._records.put(access_key_id, found, self._clock.now() + ttl)
            return found

    def clear(self) -> None:
        self._records.clear()
        self._signing.clear()
