"""Tenant-bound CMKs: which KMS keys an account's queues may be encrypted under.

Lock 1 against the confused deputy: the key service calls KMS with sealq's own
role, so without this check any tenant could name any CMK sealq may use — another
tenant's — as its queue's ``KmsMasterKeyId``. The operator allows keys per account
(``allow-kms-key ACCOUNT CMK``); the service's default key is allowed for every
account. Values are compared as given (an alias, key id or ARN): the handler has
no KMS permission to resolve one form into another. The operator's command
(which has) stores, with the key as written, the forms of it that name the same key
for sealq's role (``tools.admin.accounts.same_key_forms``): an alias name and its
alias ARN, a key id and its key ARN, in the service's own account and region.

Warm path: only CreateQueue and SetQueueAttributes naming a key other than the
default ask, and an account's allowed keys are read at most every ``ttl``
seconds per container (``SEALQ_AUTH_CACHE_TTL``, as access keys), so a disallowed
key stops being accepted within that time. A store failure propagates: the
request is refused (retryably when transient), never allowed.
"""

from __future__ import annotations

from chalicelib import errors
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock
from chalicelib.storage.ports import AccountStore

DEFAULT_TTL = 30.0


def not_allowed(cmk: str) -> errors.SqsError:
    """SQS's error for a KMS key the caller may not use (``KMS.AccessDeniedException``)."""
    return errors.kms_error(
        "KmsAccessDenied",
        f"The caller is not allowed to use the KMS key {cmk} for this account's queues.",
    )


class AllowedKeys:
    """The CMK check of a handler container, over the account store; thread-safe."""

    def __init__(
        self, store: AccountStore, *, default_cmk: str, clock: Clock,
        ttl: float = DEFAULT_TTL, max_entries: int = 1024,
    ) -> None:
        self._store = store
        self._default = default_cmk
        self._clock = clock  # monotonic: expiry is local to the container
        self._ttl = ttl
        self._cache: TTLCache[str, frozenset[str]] = TTLCache(max_entries, clock)

    def check(self, account: str, cmk: str) -> None:
        """Return when ``account`` may use ``cmk`` ("" or the default: always), else
        raise ``KmsAccessDenied``; a store failure propagates."""
        if not cmk or cmk == self._default:
            return
        if cmk not in self._allowed(account):
            raise not_allowed(cmk)

    def _allowed(self, account: str) -> frozenset[str]:
        def load() -> tuple[frozenset[str], float]:
            record = self._store.get_account(account)
            found = record.kms_keys if record is not None else frozenset()
            return found, self._clock.now() + self._ttl

        return self._cache.get_or_load(account, load)

    def clear(self) -> None:
        self._cache.clear()
