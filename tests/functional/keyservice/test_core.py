"""The key service core: one GenerateDataKey per (queue, CMK) per period, fleet-wide.

Each simulated container is its own KeyServiceCore with its own boto3 KMS client, so KMS
calls are counted per container by botocore hooks, not by sealq's own counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chalicelib import settings
from chalicelib.clock import FakeClock
from chalicelib.keyservice import KeyServiceError
from chalicelib.keyservice.core import LEASE_SECONDS, MARGIN, MAX_WAIT
from chalicelib.storage.key_records import KeyRecords, data_key_id
from tests.harness import REGION, serialized_dynamodb
from tests.key_services import (
    CMK,
    CONTEXT,
    QUEUE,
    Container,
    b64,
    make_container,
    scan_keys_table,
)


def run_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` on ``count`` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as err:  # noqa: B036 - reported to the test below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return results


def real_short_sleep(seconds: float) -> None:
    time.sleep(seconds / 5)


# -- what is stored -------------------------------------------------------------------


def test_a_record_key_names_the_cmk_and_a_long_one_by_its_hash() -> None:
    """Any KmsMasterKeyId an account may use has a record within DynamoDB's 2,048-byte
    key; every id, ARN and alias KMS can name keeps its readable (and former) form."""
    alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/" + "a" * 250
    assert f"#{alias_arn}#" in data_key_id(QUEUE, alias_arn, CONTEXT)
    long_id = data_key_id(QUEUE, "k" * 3000, CONTEXT)
    assert "k" * 100 not in long_id and len(long_id.encode()) < 2048
    assert long_id != data_key_id(QUEUE, "k" * 3001, CONTEXT)
    assert long_id == data_key_id(QUEUE, "k" * 3000, CONTEXT)


def test_records_hold_no_plaintext_key_material(stack: None, clock: FakeClock) -> None:
    box = make_container(clock)
    key = box.data_key()
    secret = box.core.service_secret("receipts")

    items = scan_keys_table()
    assert {item["id"]["S"] for item in items} == {data_key_id(QUEUE, CMK, CONTEXT),
                                                  "secret#receipts"}
    dek_record = next(item for item in items if item["id"]["S"].startswith("dek#"))
    assert set(dek_record) == {"id", "encrypted", "cmk_arn", "generated_at", "deadline"}
    for plaintext in (key.plaintext, secret):
        for item in items:
            for value in item.values():
                raw = value.get("B")
                text = value.get("S") or value.get("N") or ""
                assert raw is None or plaintext not in bytes(raw)
                assert b64(plaintext) not in text and plaintext.hex() not in text


# -- data keys -------------------------------------------------------------------------


def test_warm_container_generates_once_and_never_decrypts(stack: None, clock: FakeClock) -> None:
    box = make_container(clock)
    first = box.data_key()
    for _ in range(999):
        assert box.data_key() == first
    assert (box.generates, box.decrypts) == (1, 0)
    assert len(first.plaintext) == 32
    assert first.cmk_arn.startswith("arn:aws:kms:us-east-1:")
    assert first.deadline == clock.now() + 300


def test_concurrent_cold_containers_generate_exactly_once(
    stack: None, clock: FakeClock
) -> None:
    ddb = serialized_dynamodb()
    for round_ in range(3):  # several rounds, so a lucky interleaving cannot hide a race
        queue = f"{QUEUE}-{round_}"
        boxes = [make_container(clock, ddb, sleep=real_short_sleep) for _ in range(2)]

        def fetch(i: int, boxes: list[Container] = boxes, queue: str = queue) -> Any:
            return boxes[i % 2].data_key(queue)

        keys = run_at_once(20, fetch)

        assert len({key.plaintext for key in keys}) == 1
        assert len({key.encrypted for key in keys}) == 1
        assert sum(box.generates for box in boxes) == 1
        winner, other = sorted(boxes, key=lambda box: -box.generates)
        assert winner.decrypts == 0
        assert other.decrypts <= 1


def test_key_is_replaced_after_its_deadline(stack: None, clock: FakeClock) -> None:
    box = make_container(clock)
    first = box.data_key(reuse_period=300)

    clock.advance(300 - MARGIN - 0.5)
    assert box.data_key(reuse_period=300) == first
    clock.advance(0.5)  # less than MARGIN left: not handed out any more
    second = box.data_key(reuse_period=300)

    assert second.plaintext != first.plaintext
    assert second.deadline == clock.now() + 300
    assert box.generates == 2


def test_every_key_handed_out_has_more_than_margin_left(stack: None, clock: FakeClock) -> None:
    boxes = [make_container(clock) for _ in range(2)]
    for step in range(40):
        key = boxes[step % 2].data_key(reuse_period=60)
        assert key.deadline - MARGIN > clock.now()
        clock.advance(7.3)
    assert sum(box.generates for box in boxes) == 5  # 40 * 7.3 s / (60 - 2) s


def test_shortened_reuse_period_takes_effect_in_cache_and_record(
    stack: None, clock: FakeClock
) -> None:
    first_box, second_box = make_container(clock), make_container(clock)
    old = first_box.data_key(reuse_period=3600)
    clock.advance(100)

    new = first_box.data_key(reuse_period=60)  # the cached key is already too old
    assert new.plaintext != old.plaintext
    assert new.deadline == clock.now() + 60

    # A container still on the long period reads the new record and obeys its deadline.
    seen = second_box.data_key(reuse_period=3600)
    assert (seen.plaintext, seen.deadline) == (new.plaintext, new.deadline)
    assert (first_box.generates, second_box.generates, second_box.decrypts) == (2, 0, 1)


def test_shortened_reuse_period_shortens_the_deadline_handed_out(
    stack: None, clock: FakeClock
) -> None:
    box = make_container(clock)
    first = box.data_key(reuse_period=3600)
    clock.advance(10)
    again = box.data_key(reuse_period=60)
    assert again.plaintext == first.plaintext
    assert again.deadline == first.deadline - 3600 + 60


def test_keys_are_per_queue_and_per_cmk(stack: None, clock: FakeClock) -> None:
    other_cmk = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    box = make_container(clock)
    keys = [box.data_key(), box.data_key(f"{QUEUE}-2"), box.data_key(cmk=other_cmk)]
    assert len({key.plaintext for key in keys}) == 3
    assert keys[2].cmk_arn == other_cmk


def test_a_dead_generators_lease_is_taken_over_once_it_expires(
    stack: None, clock: FakeClock
) -> None:
    records = KeyRecords(boto3.client("dynamodb", region_name=REGION), settings.get().keys_table)
    now = clock.now()
    assert records.take_lease(
        data_key_id(QUEUE, CMK, CONTEXT), "crashed", now=now, until=now + LEASE_SECONDS,
        valid_after=now + MARGIN, reuse_period=300,
    )
    box = make_container(clock, sleep=clock.advance)  # waiting moves the fake clock

    # The wait fits the function's timeout, which is shorter than waiting out a
    # lease and generating after it: the caller gets a retryable error first...
    with pytest.raises(KeyServiceError) as raised:
        box.data_key()
    assert raised.value.code == "ServiceUnavailable"
    assert clock.now() - now <= MAX_WAIT + 0.1
    clock.advance(LEASE_SECONDS)
    # ...and its retry, with the lease expired, generates.
    key = box.data_key()

    assert box.generates == 1
    assert key.deadline == clock.now() + 300


def test_waiting_for_a_lease_that_never_ends_fails_retryably_instead_of_hanging(
    stack: None, clock: FakeClock
) -> None:
    records = KeyRecords(boto3.client("dynamodb", region_name=REGION), settings.get().keys_table)
    now = clock.now()
    records.take_lease(data_key_id(QUEUE, CMK, CONTEXT), "slow", now=now, until=now + 10,
                       valid_after=now + MARGIN, reuse_period=300)
    box = make_container(clock)  # the fake clock never moves: the lease stays live

    with pytest.raises(KeyServiceError) as raised:
        box.data_key()
    assert raised.value.code == "ServiceUnavailable"
    assert box.generates == 0


# -- decrypting ------------------------------------------------------------------------


def test_decrypt_key_in_another_container_calls_kms_once(stack: None, clock: FakeClock) -> None:
    generator, reader = make_container(clock), make_container(clock, decrypt_ttl=600)
    key = generator.data_key()

    for _ in range(5):
        plaintext = reader.core.decrypt_key(
            encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=CONTEXT
        )
        assert plaintext == key.plaintext
    assert reader.decrypts == 1
    assert generator.core.decrypt_key(
        encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=CONTEXT
    ) == key.plaintext
    assert generator.decrypts == 0

    clock.advance(600)  # decrypt_ttl over: ask KMS again
    reader.core.decrypt_key(encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=CONTEXT)
    assert reader.decrypts == 2


def test_decrypt_key_under_the_wrong_context_is_invalid_ciphertext(
    stack: None, clock: FakeClock
) -> None:
    generator, reader = make_container(clock), make_container(clock)
    key = generator.data_key()
    wrong = CONTEXT | {"sealq:queue": f"{QUEUE}-elsewhere"}

    for box in (reader, generator):  # a cached plaintext must not open under another context
        with pytest.raises(KeyServiceError) as raised:
            box.core.decrypt_key(encrypted=key.encrypted, cmk_arn=key.cmk_arn, context=wrong)
        assert raised.value.code == "InvalidCiphertext"


# -- service secrets -------------------------------------------------------------------


def test_service_secret_is_stable_across_containers(stack: None, clock: FakeClock) -> None:
    first, second = make_container(clock), make_container(clock)
    secret = first.core.service_secret("receipts")
    assert len(secret) == 32
    for _ in range(3):
        assert second.core.service_secret("receipts") == secret
    assert first.core.service_secret("s3-pointers") != secret
    assert (first.generates, first.decrypts) == (2, 0)
    assert (second.generates, second.decrypts) == (0, 1)


def test_concurrent_first_use_of_a_secret_agrees_on_one_value(
    stack: None, clock: FakeClock
) -> None:
    ddb = serialized_dynamodb()
    boxes = [make_container(clock, ddb) for _ in range(4)]
    secrets = run_at_once(8, lambda i: boxes[i % 4].core.service_secret("receipts"))
    assert len(set(secrets)) == 1
    assert len([item for item in scan_keys_table() if item["id"]["S"] == "secret#receipts"]) == 1
