"""Accounts and access keys: records, the store port, its in-memory implementation,
and the operator's operations on them (the admin plane).

A secret access key is stored only sealed by the key service (an ESDK envelope
bound to its access key id); it is shown once, when created, and never logged.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from chalicelib.clock import Clock
from chalicelib.keyservice.api import SecretService
from chalicelib.keyservice.sealed_secrets import ACCESS_KEY_CONTEXT

ACTIVE = "Active"
INACTIVE = "Inactive"
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    created_at: float
    kms_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccessKey:
    """An access key as stored: ``sealed_secret`` is the key service's envelope."""

    access_key_id: str
    account: str
    status: str
    created_at: float
    sealed_secret: bytes = field(repr=False)

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass(frozen=True)
class NewAccessKey:
    """A key just created: the only time its secret exists outside the key service."""

    account: str
    access_key_id: str
    secret_access_key: str = field(repr=False)

    def as_json(self) -> dict[str, str]:
        return {"AccountId": self.account, "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key}


class AccountStore(Protocol):
    """Where accounts and access keys live (DynamoDB, or memory in tests)."""

    def put_account(self, account: Account) -> bool:
        """Store a new account; False when its id is taken."""
        ...

    def get_account(self, account_id: str) -> Account | None: ...

    def list_accounts(self) -> list[Account]: ...

    def set_kms_key(self, account_id: str, cmk: str, allowed: bool) -> bool:
        """Allow or disallow a CMK for an account; False when there is no such account."""
        ...

    def put_key(self, key: AccessKey) -> bool:
        """Store a new access key; False when its id is taken."""
        ...

    def get_key(self, access_key_id: str) -> AccessKey | None: ...

    def list_keys(self, account_id: str) -> list[AccessKey]: ...

    def set_key_status(self, access_key_id: str, status: str) -> bool:
        """False when there is no such key."""
        ...

    def delete_key(self, access_key_id: str) -> bool:
        """False when there was no such key."""
        ...


def secret_context(access_key_id: str) -> dict[str, str]:
    """The encryption context a key's secret is sealed under."""
    return {ACCESS_KEY_CONTEXT: access_key_id}


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
