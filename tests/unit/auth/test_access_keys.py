"""Access keys on memory ports: the handler's cache of them, and keys shaped like AWS's.

On moto (the sealed secrets, the operator's command): functional/tools/test_admin_accounts.py.
"""

from __future__ import annotations

import pytest

from chalicelib.auth.keys import NEGATIVE_TTL, AccessKeyCache
from chalicelib.auth.sigv4 import Scope, UnknownAccessKey, derive_signing_key
from chalicelib.clock import FakeClock
from chalicelib.keyservice.api import KeyServiceError, secret_context
from chalicelib.storage.errors import Transient
from chalicelib.storage.ports import INACTIVE
from tests.harness import REGION
from tests.memory import MemoryAccountStore, MemoryKeyService
from tools.admin.accounts import Accounts

DATE = "20260101"


def scope(key_id: str, date: str = DATE) -> Scope:
    return Scope(key_id, date, REGION, "sqs")


# -- the handler's cache, on memory ports ---------------------------------------------


class Box:
    def __init__(self, clock: FakeClock, ttl: float = 30.0) -> None:
        self.store = MemoryAccountStore()
        self.keys = MemoryKeyService(clock)
        self.accounts = Accounts(self.store, self.keys, clock)
        self.cache = AccessKeyCache(self.store, self.keys, clock=clock, ttl=ttl)
        self.account = self.accounts.create_account("tenant").account_id
        self.key = self.accounts.create_access_key(self.account)


@pytest.fixture
def box(clock: FakeClock) -> Box:
    return Box(clock)


def test_a_resolved_key_is_the_signing_key_of_the_secret_and_names_the_account(box: Box) -> None:
    resolved = box.cache.resolve(scope(box.key.access_key_id))
    assert resolved.account == box.account
    assert resolved.signing_key == derive_signing_key(box.key.secret_access_key, DATE, REGION)


def test_the_warm_path_reads_no_record_and_opens_no_secret(box: Box) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    reads, calls = box.store.reads, box.keys.calls
    for _ in range(100):
        box.cache.resolve(scope(box.key.access_key_id))
    assert (box.store.reads, box.keys.calls) == (reads, calls)


def test_a_new_day_opens_the_secret_once_more(box: Box) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    calls = box.keys.calls
    box.cache.resolve(scope(box.key.access_key_id, "20260102"))
    box.cache.resolve(scope(box.key.access_key_id, "20260102"))
    assert box.keys.calls == calls + 1


def test_a_deactivated_key_stops_working_within_the_ttl(box: Box, clock: FakeClock) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    box.accounts.set_access_key_status(box.key.access_key_id, INACTIVE)
    box.cache.resolve(scope(box.key.access_key_id))  # still cached: the documented window
    clock.advance(30.0)
    with pytest.raises(UnknownAccessKey):
        box.cache.resolve(scope(box.key.access_key_id))


def test_a_deleted_key_stops_working_within_the_ttl(box: Box, clock: FakeClock) -> None:
    box.cache.resolve(scope(box.key.access_key_id))
    box.accounts.delete_access_key(box.key.access_key_id)
    clock.advance(30.0)
    with pytest.raises(UnknownAccessKey):
        box.cache.resolve(scope(box.key.access_key_id))


def test_an_unknown_key_is_remembered_briefly(box: Box, clock: FakeClock) -> None:
    for _ in range(10):
        with pytest.raises(UnknownAccessKey):
            box.cache.resolve(scope("AKIANOSUCHKEY0000000"))
    assert box.store.reads == 1
    clock.advance(NEGATIVE_TTL)
    with pytest.raises(UnknownAccessKey):
        box.cache.resolve(scope("AKIANOSUCHKEY0000000"))
    assert box.store.reads == 2


def test_a_store_that_cannot_be_read_refuses_rather_than_serves(
    box: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(_key_id: str) -> None:
        raise Transient("dynamodb", "ThrottlingException")

    monkeypatch.setattr(box.store, "get_key", down)
    with pytest.raises(Transient):
        box.cache.resolve(scope(box.key.access_key_id))


def test_a_secret_sealed_for_another_key_does_not_open(box: Box) -> None:
    other = box.accounts.create_access_key(box.account)
    record = box.store.get_key(other.access_key_id)
    assert record is not None
    with pytest.raises(KeyServiceError):
        box.keys.open_secret(context=secret_context(box.key.access_key_id),
                             sealed=record.sealed_secret)


def test_new_keys_and_accounts_are_shaped_like_aws(box: Box) -> None:
    assert len(box.account) == 12 and box.account.isdigit()
    key_id, secret = box.key.access_key_id, box.key.secret_access_key
    assert len(key_id) == 20 and key_id.startswith("AKIA") and key_id.isalnum()
    assert len(secret) == 40
    assert secret not in repr(box.key) and secret not in repr(box.store.get_key(key_id))
