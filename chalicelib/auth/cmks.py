"""Tenant-bound CMKs: which KMS keys an account's queues may be encrypted under.

Lock 1 against the confused deputy: the key service calls KMS with sealq's own
role, so without this check any tenant could name any CMK sealq may use — another
tenant's — as its queue's ``KmsMasterKeyId``. The operator allows keys per account
(``allow-kms-key ACCOUNT CMK``); the service's default key is allowed for every
account. Values are compared as given (an alias, key id or ARN): the handler has
no KMS permission to resolve one form into another. The operator's command
(which has) stores, with the key as written, the forms of it that name the same key
for sealq's role (:func:`same_key_forms`): an alias name and its alias ARN, a key id
and its key ARN, in the service's own account and region.

Warm path: only CreateQueue and SetQueueAttributes naming a key other than the
default ask, and an account's allowed keys are read at most every ``ttl``
seconds per container (``SEALQ_AUTH_CACHE_TTL``, as access keys), so a disallowed
key stops being accepted within that time. A store failure propagates: the
request is refused (retryably when transient), never allowed.
"""

from __future__ import annotations

import re

from chalicelib import errors
from chalicelib.auth.accounts import AccountStore
from chalicelib.cache import TTLCache
from chalicelib.clock import Clock

DEFAULT_TTL = 30.0


def not_allowed(cmk: str) -> errors.SqsError:
    """SQS's error for a KMS key the caller may not use (``KMS.AccessDeniedException``)."""
    return errors.kms_error(
        "KmsAccessDenied",
        f"The caller is not allowed to use the KMS key {cmk} for this account's queues.",
    )


_KMS_ARN = re.compile(r"arn:(aws[a-z-]*):kms:([a-z0-9-]+):([0-9]{12}):(key|alias)/(.+)", re.ASCII)


def same_key_forms(cmk: str, *, region: str, account: str | None) -> frozenset[str]:
    """``cmk`` and the other ways of writing the same key that KMS resolves identically
    for sealq's own role: in the service's ``account`` and ``region``, an alias name and
    its alias ARN (``alias/x`` and ``arn:aws:kms:R:A:alias/x``), a key id and its key
    ARN. Nothing else is the same: an alias ARN of another account names that account's
    alias, and an alias is never its target key (it can be re-pointed). With ``account``
    unknown, only ``cmk`` itself."""
    forms = {cmk}
    if account is None:
        return frozenset(forms)
    arn = _KMS_ARN.fullmatch(cmk)
    if arn is not None:
        _, arn_region, arn_account, kind, name = arn.groups()
        if arn_region == region and arn_account == account:
            forms.add(f"alias/{name}" if kind == "alias" else name)
    elif cmk.startswith("alias/"):
        forms.add(f"arn:aws:kms:{region}:{account}:{cmk}")
    elif "/" not in cmk and ":" not in cmk:
        forms.add(f"arn:aws:kms:{region}:{account}:key/{cmk}")
    return frozenset(forms)


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
        found = self._cache.get(account)
        if found is not None:
            return found
        with self._cache.lock_for(account):
            found = self._cache.get(account)
            if found is not None:
                return found
            record = self._store.get_account(account)
            found = record.kms_keys if record is not None else frozenset()
            self._cache.put(account, found, self._clock.now() + self._ttl)
            return found

    def clear(self) -> None:
        self._cache.clear()
