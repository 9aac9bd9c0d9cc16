"""The handler's tier-1 key cache, against a key-service double that calls moto KMS."""

from __future__ import annotations

import threading

import pytest

from chalicelib.clock import FakeClock
from chalicelib.crypto.keycache import HandlerKeyCache
from chalicelib.keyservice.api import REFUSAL_TTL, DataKey, KeyServiceError, key_identity
from tests.key_services import DEFAULT_CMK, QUEUE_A, QUEUE_B, REUSE, KmsKeyService

QUEUE_C = "arn:aws:sqs:us-east-1:000000000000:c"


def context_of(queue_arn: str) -> dict[str, str]:
    return {"sealq:queue-arn": queue_arn, "sealq:account": "000000000000"}


@pytest.fixture
def kms(default_cmk: str) -> str:
    """moto KMS with the default CMK under its alias (all these tests need of ``stack``)."""
    return default_cmk


@pytest.fixture
def service(kms: str, clock: FakeClock) -> KmsKeyService:
    return KmsKeyService(clock)


@pytest.fixture
def cache(service: KmsKeyService, clock: FakeClock) -> HandlerKeyCache:
    return HandlerKeyCache(service, clock=clock, max_entries=16, decrypt_ttl=600)


def data_key(cache: HandlerKeyCache, queue_arn: str = QUEUE_A) -> DataKey:
    return cache.encryption_key(
        queue_arn=queue_arn, cmk=DEFAULT_CMK, context=context_of(queue_arn), reuse_period=REUSE
    )


@pytest.mark.parametrize(
    ("max_entries", "decrypt_ttl"),
    [
        (0, 60.0),
        (-1, 60.0),
        (True, 60.0),
        (1.5, 60.0),
        (4, -1.0),
        (4, float("nan")),
        (4, float("inf")),
    ],
)
def test_rejects_bad_settings_at_construction(max_entries, decrypt_ttl, clock):
    with pytest.raises(ValueError):
        HandlerKeyCache(
            KmsKeyService(clock), clock=clock, max_entries=max_entries, decrypt_ttl=decrypt_ttl
        )


def test_reuses_a_data_key_until_its_deadline_then_fetches_a_new_one(cache, service, clock):
    first = data_key(cache)
    clock.advance(REUSE - 0.001)
    assert data_key(cache) == first
    assert service.data_key_calls == 1

    clock.advance(0.001)  # now == deadline: the old key must not be returned
    second = data_key(cache)
    assert service.data_key_calls == 2
    assert second.encrypted != first.encrypted
    assert clock.now() < second.deadline


def test_a_key_the_service_set_in_the_past_is_never_returned(cache, service, clock):
    service.deadline_offsets = [-1.0]
    key = data_key(cache)
    assert key == service.issued[1] != service.issued[0]
    assert clock.now() < key.deadline


def test_fails_when_the_service_keeps_handing_out_expired_keys(cache, service):
    service.deadline_offsets = [0.0, -5.0]
    with pytest.raises(KeyServiceError) as raised:
        data_key(cache)
    assert raised.value.code == "InternalFailure"
    assert service.data_key_calls == 2


def test_twenty_cold_threads_make_one_data_key_call(kms, clock):
    service = KmsKeyService(clock, hold=0.2)
    cache = HandlerKeyCache(service, clock=clock, max_entries=16, decrypt_ttl=600)
    start = threading.Barrier(20)
    keys: list[DataKey] = []

    def seal_key() -> None:
        start.wait()
        keys.append(data_key(cache))

    threads = [threading.Thread(target=seal_key) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert service.data_key_calls == 1
    assert len(keys) == 20 and len({key.encrypted for key in keys}) == 1


def test_twenty_cold_threads_make_one_decrypt_call(kms, clock):
    producer = HandlerKeyCache(KmsKeyService(clock), clock=clock, max_entries=4, decrypt_ttl=60)
    sealed = data_key(producer)
    service = KmsKeyService(clock, hold=0.2)
    consumer = HandlerKeyCache(service, clock=clock, max_entries=4, decrypt_ttl=60)
    start = threading.Barrier(20)
    plaintexts: list[bytes] = []

    def open_key() -> None:
        start.wait()
        plaintexts.append(
            consumer.decryption_key(
                encrypted=sealed.encrypted, cmk_arn=sealed.cmk_arn, context=context_of(QUEUE_A)
            )
        )

    threads = [threading.Thread(target=open_key) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert service.decrypt_calls == 1
    assert plaintexts == [sealed.plaintext] * 20


def test_holds_at_most_max_entries_queues_least_recently_used_out_first(service, clock):
    cache = HandlerKeyCache(service, clock=clock, max_entries=2, decrypt_ttl=60)
    for queue in (QUEUE_A, QUEUE_B, QUEUE_C):
        data_key(cache, queue)
    assert service.data_key_calls == 3
    data_key(cache, QUEUE_C)
    assert service.data_key_calls == 3
    data_key(cache, QUEUE_A)  # evicted by C: fetched again, evicting B
    assert service.data_key_calls == 4
    data_key(cache, QUEUE_C)
    assert service.data_key_calls == 4
    data_key(cache, QUEUE_B)
    assert service.data_key_calls == 5


def test_decrypts_its_own_data_keys_without_asking_the_service(cache, service):
    key = data_key(cache)
    reordered = dict(reversed(list(context_of(QUEUE_A).items())))
    plaintext = cache.decryption_key(
        encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=reordered
    )
    assert plaintext == key.plaintext
    assert service.decrypt_calls == 0


def test_decrypted_keys_expire_decrypt_ttl_after_fetch(kms, clock):
    key = data_key(
        HandlerKeyCache(KmsKeyService(clock), clock=clock, max_entries=4, decrypt_ttl=60)
    )
    service = KmsKeyService(clock)
    consumer = HandlerKeyCache(service, clock=clock, max_entries=4, decrypt_ttl=60)

    def decrypt() -> bytes:
        return consumer.decryption_key(
            encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=context_of(QUEUE_A)
        )

    assert decrypt() == key.plaintext
    clock.advance(59.999)
    assert decrypt() == key.plaintext
    assert service.decrypt_calls == 1
    clock.advance(0.001)
    assert decrypt() == key.plaintext
    assert service.decrypt_calls == 2


def test_key_identity_covers_arn_ciphertext_and_context_but_not_context_order():
    base = key_identity(encrypted=b"edk", cmk_arn="arn:k", context={"a": "1", "b": "2"})
    assert base == key_identity(encrypted=b"edk", cmk_arn="arn:k", context={"b": "2", "a": "1"})
    assert base != key_identity(encrypted=b"edk", cmk_arn="arn:j", context={"a": "1", "b": "2"})
    assert base != key_identity(encrypted=b"edj", cmk_arn="arn:k", context={"a": "1", "b": "2"})
    assert base != key_identity(encrypted=b"edk", cmk_arn="arn:k", context={"a": "1", "b": "3"})
    assert base != key_identity(encrypted=b"edk", cmk_arn="arn:k", context={"a": "1"})
    # Length prefixes: moving bytes between fields changes the identity.
    assert key_identity(encrypted=b"dk", cmk_arn="arn:ke", context={}) != key_identity(
        encrypted=b"edk", cmk_arn="arn:k", context={}
    )


def test_key_service_errors_propagate_unchanged(cache, service):
    service.fail = KeyServiceError("KmsThrottled", "slow down")
    with pytest.raises(KeyServiceError) as raised:
        data_key(cache)
    assert raised.value is service.fail
    with pytest.raises(KeyServiceError) as raised:
        cache.decryption_key(encrypted=b"x" * 96, cmk_arn="arn:k", context=context_of(QUEUE_A))
    assert raised.value is service.fail


def test_throttling_and_outages_are_not_remembered(cache, service):
    for code in ("KmsThrottled", "ServiceUnavailable", "InternalFailure"):
        service.fail = KeyServiceError(code, "transient")
        with pytest.raises(KeyServiceError):
            data_key(cache)
    service.fail = None
    assert data_key(cache).plaintext


def test_a_refused_key_is_remembered_for_the_refusal_window_only(cache, service, clock):
    service.fail = KeyServiceError("KmsDisabled", "the key is disabled")
    for _ in range(3):
        with pytest.raises(KeyServiceError) as raised:
            data_key(cache)
        assert raised.value.code == "KmsDisabled"
        with pytest.raises(KeyServiceError):
            cache.decryption_key(encrypted=b"x" * 96, cmk_arn="arn:k",
                                 context=context_of(QUEUE_A))
    assert (service.data_key_calls, service.decrypt_calls) == (1, 1)  # asked once each
    service.fail = None
    clock.advance(REFUSAL_TTL)
    assert data_key(cache).plaintext


def test_clear_forgets_every_key(cache, service):
    key = data_key(cache)
    cache.clear()
    data_key(cache)
    assert service.data_key_calls == 2
    cache.clear()
    cache.decryption_key(encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=context_of(QUEUE_A))
    assert service.decrypt_calls == 1
