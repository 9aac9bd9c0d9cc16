"""The operator's operations on accounts, access keys and allowed CMKs (the admin plane).

A secret access key is stored only sealed by the key service (an ESDK envelope
bound to its access key id); it is shown once, when created, and never logged.
Handlers only read what is written here (``chalicelib.auth.keys``, ``chalicelib.auth.cmks``).
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field

from chalicelib.clock import Clock
from chalicelib.keyservice.api import SecretService, secret_context
from chalicelib.storage.ports import ACTIVE, INACTIVE, AccessKey, Account, AccountStore

_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class NewAccessKey:
    """A key just created: the only time its secret exists outside the key service."""

    account: str
    access_key_id: str
    secret_access_key: str = field(repr=False)

    def as_json(self) -> dict[str, str]:
        return {"AccountId": self.account, "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key}


def new_access_key_id() -> str:
    """``AKIA`` and 16 base32 characters: 20 characters, shaped like AWS's."""
    return "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def new_secret() -> str:
    """40 characters of base64 (240 random bits), shaped like AWS's secret keys."""
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def new_account_id() -> str:
    return f"{secrets.randbelow(10**12):012d}"


class UnknownAccount(LookupError):
    pass


class UnknownKey(LookupError):
    pass


class Accounts:
    """The operator's operations: accounts, access keys, allowed CMKs."""

    def __init__(self, store: AccountStore, secrets_service: SecretService, clock: Clock) -> None:
        self._store = store
        self._secrets = secrets_service
        self._clock = clock

    def create_account(self, name: str, account_id: str | None = None) -> Account:
        if not name or len(name) > 256:
            raise ValueError("an account name is 1 to 256 characters")
        if account_id is not None and not (len(account_id) == 12 and account_id.isdigit()):
            raise ValueError("an account id is 12 digits")
        for _ in range(10):
            account = Account(account_id or new_account_id(), name, self._clock.now())
            if self._store.put_account(account):
                return account
            if account_id is not None:
                raise ValueError(f"account {account_id} exists")
        raise RuntimeError("could not find a free account id")

    def create_access_key(self, account_id: str) -> NewAccessKey:
        if self._store.get_account(account_id) is None:
            raise UnknownAccount(account_id)
        for _ in range(10):
            key_id, secret = new_access_key_id(), new_secret()
            sealed = self._secrets.seal_secret(
                context=secret_context(key_id), plaintext=secret.encode("ascii"))
            record = AccessKey(key_id, account_id, ACTIVE, self._clock.now(), sealed)
            if self._store.put_key(record):
                return NewAccessKey(account_id, key_id, secret)
        raise RuntimeError("could not find a free access key id")

    def register_access_key(self, account_id: str, access_key_id: str, secret: str) -> bool:
        """Store a key whose id and secret were made elsewhere (the local stack's saved
        profile, test fixtures); False when that id is taken."""
        if len(access_key_id) != 20 or not access_key_id.isalnum() or len(secret) != 40:
            raise ValueError("an access key id is 20 letters or digits, a secret 40 characters")
        if self._store.get_account(account_id) is None:
            raise UnknownAccount(account_id)
        sealed = self._secrets.seal_secret(
            context=secret_context(access_key_id), plaintext=secret.encode("ascii"))
        return self._store.put_key(
            AccessKey(access_key_id, account_id, ACTIVE, self._clock.now(), sealed))

    def ensure_account(self, account_id: str, name: str) -> Account:
        """The account ``account_id``, created under ``name`` if it does not exist."""
        found = self._store.get_account(account_id)
        if found is not None:
            return found
        self._store.put_account(Account(account_id, name, self._clock.now()))
        found = self._store.get_account(account_id)
        assert found is not None
        return found

    def key_exists(self, access_key_id: str) -> bool:
        return self._store.get_key(access_key_id) is not None

    def list_accounts(self) -> list[Account]:
        return sorted(self._store.list_accounts(), key=lambda a: a.account_id)

    def list_access_keys(self, account_id: str) -> list[AccessKey]:
        return sorted(self._store.list_keys(account_id), key=lambda k: k.created_at)

    def set_access_key_status(self, access_key_id: str, status: str) -> None:
        if status not in (ACTIVE, INACTIVE):
            raise ValueError(f"status is {ACTIVE} or {INACTIVE}")
        if not self._store.set_key_status(access_key_id, status):
            raise UnknownKey(access_key_id)

    def delete_access_key(self, access_key_id: str) -> None:
        if not self._store.delete_key(access_key_id):
            raise UnknownKey(access_key_id)

    def set_kms_key(self, account_id: str, cmk: str, allowed: bool) -> None:
        if not cmk:
            raise ValueError("a CMK id, ARN or alias is required")
        if not self._store.set_kms_key(account_id, cmk, allowed):
            raise UnknownAccount(account_id)


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
