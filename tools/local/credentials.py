"""The local stack's access key, kept as AWS CLI profile ``sealq-local``.

``make run`` calls :func:`ensure_local_key` at startup: on first start it creates an
access key in the local account and writes it to ``<state dir>/credentials``
(``.sealq/`` under the project, git-ignored); on later starts it registers the same
key again when the backing store was fresh (embedded moto keeps nothing), so the
profile keeps working across restarts.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path

from tools.admin.accounts import Accounts

PROFILE = "sealq-local"
LOCAL_ACCOUNT_NAME = "local"


@dataclass(frozen=True)
class LocalKey:
    account: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    credentials_file: Path


def read_profile(path: Path, profile: str = PROFILE) -> tuple[str, str] | None:
    """(access key id, secret) of ``profile`` in an AWS credentials file, if present."""
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return None
    if not parser.has_section(profile):
        return None
    key_id = parser.get(profile, "aws_access_key_id", fallback="")
    secret = parser.get(profile, "aws_secret_access_key", fallback="")
    return (key_id, secret) if key_id and secret else None


def write_profile(path: Path, key_id: str, secret: str, profile: str = PROFILE) -> None:
    """Write (or replace) ``profile`` in the credentials file, readable by its owner only."""
    parser = configparser.RawConfigParser()
    if path.exists():
        parser.read(path)
    if not parser.has_section(profile):
        parser.add_section(profile)
    parser.set(profile, "aws_access_key_id", key_id)
    parser.set(profile, "aws_secret_access_key", secret)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        parser.write(out)


def ensure_local_key(accounts: Accounts, account_id: str, state_dir: Path) -> LocalKey:
    """The local account's key from ``state_dir``'s credentials file, made when missing."""
    path = state_dir / "credentials"
    accounts.ensure_account(account_id, LOCAL_ACCOUNT_NAME)
    saved = read_profile(path)
    if saved is not None:
        key_id, secret = saved
        try:
            if accounts.key_exists(key_id) or accounts.register_access_key(account_id, *saved):
                return LocalKey(account_id, key_id, secret, path)
        except ValueError:  # a hand-edited profile: replace it
            pass
    created = accounts.create_access_key(account_id)
    write_profile(path, created.access_key_id, created.secret_access_key)
    return LocalKey(account_id, created.access_key_id, created.secret_access_key, path)
