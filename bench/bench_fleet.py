"""KMS requests of a whole fleet over simulated time: why sealq caches data keys in two tiers.

Run from the repo root: ``python -m bench.bench_fleet`` (``--quick`` for 10 simulated
minutes). One seeded schedule of sends and receives is played four ways, side by side:

(a) KMS per message: every send costs a GenerateDataKey, every received message a
    Decrypt. Counted from the schedule (1 + 1 per message), not run.
(b) One tier: every handler container caches data keys it gets straight from KMS
    (the real :class:`HandlerKeyCache` and :class:`Sealer` over :class:`_DirectKms`),
    so each container generates its own key per queue per reuse period and decrypts
    every other container's keys. Run and counted at the botocore layer.
(c) sealq: the real path (``tests.harness.Fleet``): boto3 SQS clients served by
    handler containers, tier-1 caches, key-service containers with tier-2 caches and
    DynamoDB key records, KMS counted at the key services' botocore layer.
(d) What SQS documents for its own SSE: R = B/D x (2P + C) per queue.

Everything runs in-process on moto with dummy credentials; the clock is a
``FakeClock`` advanced tick by tick, so an hour takes about a minute and nothing sleeps.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from chalicelib import settings
from chalicelib.clock import Clock, FakeClock
from chalicelib.crypto.keycache import HandlerKeyCache
from chalicelib.crypto.sealing import Binding, Sealer
from chalicelib.handler import container
from chalicelib.keyservice.api import DataKey
from tests.harness import REGION, Fleet, KmsCounter, provision_stack

ACCOUNT = settings.DEFAULT_ACCOUNT
# What SQS answers per ReceiveMessage at most: a receive drains at most this many.
MAX_RECEIVE = 10
# KMS list price for symmetric requests (us-east-1): $0.03 per 10,000.
USD_PER_REQUEST = 0.03 / 10_000
# The key service's per-deployment secret, tagged in its KMS encryption context.
SECRET_CONTEXT_KEY = "sealq:secret"

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Variables that could point a bench at a real account or endpoint: removed while it runs.
_UNSAFE_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@dataclass(frozen=True)
class Workload:
    """The fleet and traffic every column sees; defaults are the published run."""

    queues: int = 4
    producers: int = 10
    consumers: int = 5
    handlers: int = 8
    key_services: int = 2
    duration: int = 3600  # B, simulated seconds
    reuse_period: int = 300  # D, the queues' KmsDataKeyReusePeriodSeconds
    # Each producer sends one message per tick; consumers drain every queue each tick
    # (moto's ReceiveMessage slows down with queue depth, so queues stay shallow).
    tick: int = 20
    seed: int = 20240601

    @classmethod
    def quick(cls) -> Workload:
        """Ten simulated minutes: the same fleet, for tests and a fast look."""
        return cls(duration=600)

    @property
    def ticks(self) -> int:
        return math.ceil(self.duration / self.tick)

    @property
    def periods(self) -> int:
        """ceil(B/D): reuse periods a queue lives through, hence its data keys at most."""
        return math.ceil(self.duration / self.reuse_period)

    def queue_name(self, index: int) -> str:
        return f"bench-{index}"


@dataclass(frozen=True)
class Send:
    producer: int
    queue: int
    handler: int
    body: str


@dataclass(frozen=True)
class Receive:
    """One consumer's ReceiveMessage, then DeleteMessageBatch for what it got.

    ``bodies`` are the messages it must get (all sent to the queue this tick), so every
    column opens the same message on the same handler container at the same time.
    """

    consumer: int
    queue: int
    handler: int
    delete_handler: int
    bodies: tuple[str, ...]


@dataclass(frozen=True)
class Tick:
    at: float  # seconds after the start
    sends: tuple[Send, ...]
    receives: tuple[Receive, ...]


def schedule(work: Workload) -> list[Tick]:
    """The seeded event sequence: every request lands on a random handler container."""
    rng = random.Random(work.seed)
    ticks: list[Tick] = []
    serial = 0
    for index in range(work.ticks):
        sends = []
        for producer in range(work.producers):
            body = f"p{producer}-m{serial}"
            serial += 1
            sends.append(
                Send(producer, rng.randrange(work.queues), rng.randrange(work.handlers), body)
            )
        receives = []
        for queue in range(work.queues):
            bodies = [s.body for s in sends if s.queue == queue]
            for start in range(0, len(bodies), MAX_RECEIVE):
                receives.append(
                    Receive(
                        consumer=rng.randrange(work.consumers),
                        queue=queue,
                        handler=rng.randrange(work.handlers),
                        delete_handler=rng.randrange(work.handlers),
                        bodies=tuple(bodies[start : start + MAX_RECEIVE]),
                    )
                )
        ticks.append(Tick(index * work.tick, tuple(sends), tuple(receives)))
    return ticks


@dataclass(frozen=True)
class KmsCount:
    generate: int
    decrypt: int

    @property
    def total(self) -> int:
        return self.generate + self.decrypt


@dataclass(frozen=True)
class FleetResult:
    work: Workload
    sent: int
    received: int
    per_message: KmsCount  # (a)
    one_tier: KmsCount  # (b)
    sealq: KmsCount  # (c), data keys only
    sealq_secret: KmsCount  # (c), the receipt-handle secret, once per deployment
    documented: int  # (d), SQS documents only the total
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def sealq_data_keys(self) -> int:
        """GenerateDataKey calls for message data keys in (c): the invariant-5 quantity."""
        return self.sealq.generate


# -- (a) -------------------------------------------------------------------------------


def per_message(ticks: Sequence[Tick]) -> KmsCount:
    """No cache: one GenerateDataKey per send, one Decrypt per received message."""
    sends = sum(len(t.sends) for t in ticks)
    received = sum(len(r.bodies) for t in ticks for r in t.receives)
    return KmsCount(sends, received)


# -- (b) -------------------------------------------------------------------------------


class _DirectKms:
    """A handler container's KeyService that is KMS itself: the one-tier design.

    It has no shared records, so each container generates its own data key per
    (queue, CMK) per reuse period, and every key another container sealed with costs
    a Decrypt. Deadlines are ``now + reuse period``, as the key service would set them.
    """

    def __init__(self, kms: Any, clock: Clock) -> None:
        self._kms = kms
        self._clock = clock

    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        out = self._kms.generate_data_key(
            KeyId=cmk, KeySpec="AES_256", EncryptionContext=dict(context)
        )
        return DataKey(
            plaintext=out["Plaintext"],
            encrypted=out["CiphertextBlob"],
            cmk_arn=out["KeyId"],
            deadline=self._clock.now() + reuse_period,
        )

    def decrypt_key(self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
        out = self._kms.decrypt(
            CiphertextBlob=encrypted, KeyId=cmk_arn, EncryptionContext=dict(context)
        )
        return bytes(out["Plaintext"])

    def service_secret(self, name: str) -> bytes:
        raise NotImplementedError("the one-tier column seals and opens only")


def one_tier(work: Workload, ticks: Sequence[Tick]) -> KmsCount:
    """Play the schedule through one real HandlerKeyCache + Sealer per handler container."""
    clock = FakeClock()
    conf = settings.get()
    counter = KmsCounter()
    sealers = []
    for index in range(work.handlers):
        kms = boto3.client("kms", region_name=REGION)
        kms.meta.events.register("before-call.kms.*", counter.hook(index))
        keys = HandlerKeyCache(
            _DirectKms(kms, clock),
            clock=clock,
            max_entries=conf.handler_cache_size,
            decrypt_ttl=conf.decrypt_key_ttl,
        )
        sealers.append(Sealer(keys))
    arns = [f"arn:aws:sqs:{REGION}:{ACCOUNT}:{work.queue_name(q)}" for q in range(work.queues)]
    start = clock.now()
    for tick in ticks:
        clock.advance(start + tick.at - clock.now())
        sealed: dict[str, bytes] = {}
        for send in tick.sends:
            sealed[send.body] = sealers[send.handler].seal(
                send.body.encode(),
                queue_arn=arns[send.queue],
                account=ACCOUNT,
                cmk=conf.default_kms_key,
                reuse_period=work.reuse_period,
            )
        for receive in tick.receives:
            arn = arns[receive.queue]
            for body in receive.bodies:
                opened = sealers[receive.handler].open(sealed[body], bound_to={Binding(arn)})
                if opened.plaintext != body.encode():
                    raise AssertionError("one-tier column opened the wrong message")
    return KmsCount(counter.total("GenerateDataKey"), counter.total("Decrypt"))


# -- (c) -------------------------------------------------------------------------------


class _SecretCalls:
    """Which of the key services' KMS calls were for the deployment secret.

    The harness counts by operation; this looks at the encryption context of the same
    calls so the table can show the one-off secret apart from message data keys.
    """

    def __init__(self) -> None:
        self.generate = 0
        self.decrypt = 0

    def hook(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        if SECRET_CONTEXT_KEY in (params.get("EncryptionContext") or {}):
            if model.name == "GenerateDataKey":
                self.generate += 1
            elif model.name == "Decrypt":
                self.decrypt += 1


def sealq(work: Workload, ticks: Sequence[Tick]) -> tuple[KmsCount, KmsCount, int]:
    """Play the schedule through real SQS clients on a harness fleet.

    Returns (data-key KMS calls, secret KMS calls, messages received).
    """
    clock = FakeClock()
    fleet = Fleet(clock, key_service_containers=work.key_services)
    secret = _SecretCalls()
    for kms in fleet.kms_clients:
        kms.meta.events.register("before-parameter-build.kms.*", secret.hook)
    handlers = [fleet.handler(core=i % work.key_services) for i in range(work.handlers)]
    clients = [fleet.sqs(h) for h in handlers]
    urls = [
        clients[0].create_queue(
            QueueName=work.queue_name(q),
            Attributes={"KmsDataKeyReusePeriodSeconds": str(work.reuse_period)},
        )["QueueUrl"]
        for q in range(work.queues)
    ]
    start = clock.now()
    received = 0
    for tick in ticks:
        clock.advance(start + tick.at - clock.now())
        for send in tick.sends:
            clients[send.handler].send_message(QueueUrl=urls[send.queue], MessageBody=send.body)
        for receive in tick.receives:
            received += _drain(clients, urls[receive.queue], receive)
    generate = fleet.kms.total("GenerateDataKey")
    decrypt = fleet.kms.total("Decrypt")
    data_keys = KmsCount(generate - secret.generate, decrypt - secret.decrypt)
    return data_keys, KmsCount(secret.generate, secret.decrypt), received


def _drain(clients: Sequence[Any], url: str, receive: Receive) -> int:
    """Receive exactly ``receive.bodies`` (asking again if SQS returns fewer), then delete."""
    client = clients[receive.handler]
    got: list[dict[str, Any]] = []
    for _ in range(10):
        want = len(receive.bodies) - len(got)
        if want == 0:
            break
        got += client.receive_message(QueueUrl=url, MaxNumberOfMessages=want).get("Messages", [])
    if sorted(m["Body"] for m in got) != sorted(receive.bodies):
        raise AssertionError(f"received {len(got)} of {len(receive.bodies)} messages")
    out = clients[receive.delete_handler].delete_message_batch(
        QueueUrl=url,
        Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
    )
    if out.get("Failed"):
        raise AssertionError(f"delete failed: {out['Failed']}")
    return len(got)


# -- (d) -------------------------------------------------------------------------------


def documented(work: Workload) -> int:
    """SQS's published estimate, R = B/D x (2P + C) per queue, for all queues."""
    per_queue = work.duration / work.reuse_period * (2 * work.producers + work.consumers)
    return round(per_queue * work.queues)


# -- running and printing --------------------------------------------------------------


def measure(work: Workload) -> FleetResult:
    """All four columns for ``work``; needs an active moto with sealq's resources."""
    ticks = schedule(work)
    seconds: dict[str, float] = {}

    def timed(name: str, run: Callable[[], Any]) -> Any:
        began = time.perf_counter()
        out = run()
        seconds[name] = time.perf_counter() - began
        return out

    a = per_message(ticks)
    b = timed("b", lambda: one_tier(work, ticks))
    c, c_secret, received = timed("c", lambda: sealq(work, ticks))
    return FleetResult(
        work=work,
        sent=sum(len(t.sends) for t in ticks),
        received=received,
        per_message=a,
        one_tier=b,
        sealq=c,
        sealq_secret=c_secret,
        documented=documented(work),
        seconds=seconds,
    )


def _ratio(top: int, bottom: int) -> str:
    return f"{top / bottom:.1f}x" if bottom else "-"


def format_table(result: FleetResult) -> str:
    """The report: workload header, the four columns, ratios, notes."""
    w = result.work
    a, b, c = result.per_message, result.one_tier, result.sealq
    lines = [
        f"sealq fleet KMS requests, python {platform.python_version()}, moto in-process",
        f"workload: {w.queues} queues, {w.producers} producers, {w.consumers} consumers, "
        f"{w.handlers} handler containers, {w.key_services} key-service containers",
        f"          {w.duration} simulated s (B), reuse period {w.reuse_period} s (D), "
        f"each producer sends 1 message every {w.tick} s to a random queue,",
        f"          consumers drain each queue every {w.tick} s; every request lands on a "
        f"random handler container (seed {w.seed})",
        f"messages sent / received: {result.sent} / {result.received}",
        "",
    ]
    header = (
        f"{'KMS requests':<20} {'(a) per msg':>11} {'(b) 1 tier':>11} {'(c) sealq':>10} "
        f"{'(d) SQS doc':>11} {'(a)/(c)':>8} {'(b)/(c)':>8}"
    )
    lines += [header, "-" * len(header)]
    rows = [
        ("GenerateDataKey", a.generate, b.generate, c.generate),
        ("Decrypt", a.decrypt, b.decrypt, c.decrypt),
        ("Total KMS requests", a.total, b.total, c.total),
    ]
    for name, av, bv, cv in rows:
        dv = f"{result.documented}" if name.startswith("Total") else "-"
        lines.append(
            f"{name:<20} {av:>11} {bv:>11} {cv:>10} {dv:>11} "
            f"{_ratio(av, cv):>8} {_ratio(bv, cv):>8}"
        )
    cost = [
        f"{t / result.sent * 1e6 * USD_PER_REQUEST:.2f}" if result.sent else "-"
        for t in (a.total, b.total, c.total, result.documented)
    ]
    lines.append(
        f"{'$ per 1M messages':<20} {cost[0]:>11} {cost[1]:>11} {cost[2]:>10} {cost[3]:>11}"
    )
    s = result.sealq_secret
    lines += [
        "",
        f"(c) excludes the receipt-handle secret: {s.generate} GenerateDataKey + {s.decrypt} "
        "Decrypt, once per deployment (per key-service container),",
        f"    not per queue or period; with it (c) totals {c.total + s.total}. "
        f"Bound on (c) GenerateDataKey: queues x ceil(B/D) = {w.queues * w.periods}.",
        "(a) is counted from the schedule (1 GenerateDataKey per send, 1 Decrypt per "
        "received message); (b) and (c) are measured.",
        "(d) SQS documents only the total, R = B/D x (2P + C) per queue; it caches per "
        "principal, so it grows with producers and consumers.",
        "$ per 1M messages: KMS requests at $0.03 per 10,000, at this message rate; (b), (c) "
        "and (d) grow with time and queues, not messages.",
    ]
    if result.seconds:
        lines.append(
            "wall time: "
            + ", ".join(f"({k}) {v:.1f} s" for k, v in sorted(result.seconds.items()))
        )
    return "\n".join(lines)


@contextlib.contextmanager
def sandbox() -> Iterator[None]:
    """Dummy credentials and default settings for the block, restored afterwards.

    A bench must never reach a real account: SEALQ_* overrides (an endpoint, a key) and
    AWS profile or endpoint variables are removed, and cached settings and clients are
    dropped on both sides so nothing built before or after leaks across.
    """
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("SEALQ_") or name in _UNSAFE_ENV:
            del os.environ[name]
    os.environ.update(DUMMY_ENV)
    container.reset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        container.reset()


@contextlib.contextmanager
def moto_stack() -> Iterator[None]:
    """An in-process moto backend with sealq's tables, bucket and default CMK."""
    with sandbox(), mock_aws():
        provision_stack()
        yield


def run(work: Workload) -> FleetResult:
    """Measure ``work`` on a fresh in-process moto backend."""
    with moto_stack():
        return measure(work)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_fleet", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 simulated minutes, not 60")
    args = parser.parse_args(argv)
    work = Workload.quick() if args.quick else Workload()
    began = time.perf_counter()
    result = run(work)
    print(format_table(result), flush=True)
    print(f"bench_fleet took {time.perf_counter() - began:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
