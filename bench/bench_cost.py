"""What a million messages cost on sealq, beside the same workload on SQS with SSE-KMS.

Run from the repo root: ``python -m bench.bench_cost`` (``--quick``: a few cycles, as
the tests run it). One queue, 1 KiB messages, each sent, received and deleted, at
batch 1 (SendMessage, ReceiveMessage of 1, DeleteMessage) and batch 10
(SendMessageBatch, ReceiveMessage of 10, DeleteMessageBatch). A producer and a
consumer each have their own handler container (tests.harness: real boto3 clients
answered in-process) and key-service container; everything they do is counted:

- API requests: each is one API Gateway request and one handler invocation;
- the handler's in-process CPU ms (``time.process_time`` over each request, less the
  time botocore spends inside moto answering a backing call: that is AWS's time, not
  the function's), and the key service's, apart;
- backing SQS requests, DynamoDB reads and writes, S3 calls and KMS requests, counted
  at botocore on the containers' own clients (as bench_fleet and tests/harness.py
  count KMS), and key-service invocations at their transport.

The steady state is measured with the clocks still; what the caches do over time (a
queue record read again every ``SEALQ_QUEUE_CACHE_TTL``, an access key every
``SEALQ_AUTH_CACHE_TTL``, a data key every reuse period) is measured by moving the
clock past each and counting what one more cycle costs, then spread over an assumed
message rate. Prices are list prices (the table below: its date and each price's
page); whatever is not measured here (network wait per AWS call, the rate, how many
containers stay warm) is printed and labelled as assumed. The same workload on SQS
itself is counted on moto's SQS with a plain client; its KMS requests follow SQS's
documented formula for SSE-KMS, R = B/D x (2P + C) per queue.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import math
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

# bench_fleet first: it imports moto before tests.harness makes its boto3 session.
from bench.bench_fleet import moto_stack
from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import FakeClock
from chalicelib.domain.queues.attributes import INT_ATTRIBUTES
from chalicelib.handler import container
from chalicelib.keyservice import KeyServiceClient
from chalicelib.keyservice.transport import InProcessTransport
from tests.harness import ROOT, SESSION, Fleet, sqs_client

BODY = "x" * 1024  # 1 KiB
BATCHES = (1, 10)
API_TYPES = ("REST", "HTTP")

# -- list prices (us-east-1, first tier; checked 2026-12-02) ----------------------------

PRICES_DATE = "2026-12-02"
PRICES: dict[str, tuple[float, str, str]] = {
    # name: (USD per unit, unit, the page it comes from)
    "api_rest": (3.50 / 1e6, "REST API request (first 333M a month)",
                 "https://aws.amazon.com/api-gateway/pricing/"),
    "api_http": (1.00 / 1e6, "HTTP API request, metered per 512 KB (first 300M a month)",
                 "https://aws.amazon.com/api-gateway/pricing/"),
    "lambda_request": (0.20 / 1e6, "Lambda request",
                       "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second": (0.0000166667, "Lambda GB-second, x86 (first 6B GB-s a month)",
                         "https://aws.amazon.com/lambda/pricing/"),
    "sqs_request": (0.40 / 1e6, "SQS standard request, per 64 KB chunk (first 100B)",
                    "https://aws.amazon.com/sqs/pricing/"),
    "ddb_read": (0.125 / 1e6, "DynamoDB on-demand read request unit",
                 "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "ddb_write": (0.625 / 1e6, "DynamoDB on-demand write request unit",
                  "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "s3_put": (0.005 / 1000, "S3 Standard PUT, COPY, POST, LIST request",
               "https://aws.amazon.com/s3/pricing/"),
    "s3_get": (0.0004 / 1000, "S3 Standard GET and other requests",
               "https://aws.amazon.com/s3/pricing/"),
    "kms_request": (0.03 / 10_000, "KMS symmetric request",
                    "https://aws.amazon.com/kms/pricing/"),
}

# -- assumptions (not measured here: moto answers in-process) ---------------------------

# Network wait of one call from Lambda to the service in its region, in ms.
ASSUMED_WAIT_MS = {"sqs": 6.0, "dynamodb": 4.0, "s3": 15.0, "kms": 8.0, "lambda": 12.0}
# Messages per second through the one queue, steady.
ASSUMED_RATE = 100.0
# The SQS side's KMS formula: one producer and one consumer principal (IAM role).
ASSUMED_PRINCIPALS = (1, 1)
# DynamoDB items are under 1 KB written and 4 KB read (sealq reads strongly consistent:
# one read request unit per read); an S3 object at most one request per call.

_READS = {"GetItem", "Query", "Scan", "BatchGetItem"}
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


def _memory_mb() -> dict[str, int]:
    """The prod stage's memory sizes (.chalice/config.json): what duration is billed at."""
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config["stages"]["prod"]["lambda_functions"]
    return {"handler": int(functions["api_handler"]["lambda_memory_size"]),
            "key service": int(functions["key_service"]["lambda_memory_size"])}


# -- counting -----------------------------------------------------------------------------


@dataclass
class _Span:
    owner: str
    started: float
    aws: float = 0.0
    nested: float = 0.0


@dataclass
class Meter:
    """Invocations, their own CPU, and the AWS calls each function made."""

    calls: collections.Counter[tuple[str, str, str]] = field(
        default_factory=collections.Counter)  # (owner, service, operation)
    invocations: collections.Counter[str] = field(default_factory=collections.Counter)
    cpu_ms: collections.defaultdict[str, float] = field(
        default_factory=lambda: collections.defaultdict(float))
    _stack: list[_Span] = field(default_factory=list)
    _sent: float | None = None

    def reset(self) -> None:
        self.calls.clear()
        self.invocations.clear()
        self.cpu_ms.clear()

    @contextlib.contextmanager
    def invocation(self, owner: str) -> Iterator[None]:
        span = _Span(owner, time.process_time())
        self._stack.append(span)
        try:
            yield
        finally:
            self._stack.pop()
            total = time.process_time() - span.started
            self.cpu_ms[owner] += (total - span.aws - span.nested) * 1000.0
            self.invocations[owner] += 1
            if self._stack:
                self._stack[-1].nested += total

    def watch(self, client: Any) -> None:
        """Count ``client``'s calls for whichever function makes them, and keep the time
        moto spends answering out of that function's CPU."""
        service = client.meta.service_model.service_id.hyphenize()

        def count(model: Any, **_: Any) -> None:
            owner = self._stack[-1].owner if self._stack else "setup"
            self.calls[(owner, service, model.name)] += 1

        def sent(**_: Any) -> None:
            self._sent = time.process_time()

        def answered(**_: Any) -> None:
            if self._sent is not None and self._stack:
                self._stack[-1].aws += time.process_time() - self._sent
            self._sent = None

        client.meta.events.register("before-call", count)
        client.meta.events.register_first("before-send", sent)
        client.meta.events.register_last("before-parse", answered)

    def total(self, owner: str | None = None, service: str | None = None,
              operations: set[str] | None = None) -> int:
        return sum(n for (o, s, op), n in self.calls.items()
                   if (owner is None or o == owner) and (service is None or s == service)
                   and (operations is None or op in operations))


class _MeteredCore:
    """A key-service container whose every invocation the meter times."""

    def __init__(self, core: Any, meter: Meter) -> None:
        self._core = core
        self._meter = meter

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self._meter.invocation("key service"):
            answer: dict[str, Any] = self._core.handle(payload)
            return answer


class _MeteredHandler:
    """A handler container whose every request is one metered invocation."""

    def __init__(self, frontend: Any, meter: Meter) -> None:
        self._frontend = frontend
        self._meter = meter

    def handle(self, *args: Any, **kwargs: Any) -> Any:
        with self._meter.invocation("handler"):
            return self._frontend.handle(*args, **kwargs)


def _metered_client(fleet: Fleet, core: int, meter: Meter) -> Any:
    """A boto3 SQS client answered by a new handler container on key-service ``core``."""
    conf = settings.get()
    clients = Clients(SESSION, conf.region, conf.aws_endpoint)
    frontend = container.build_frontend(
        conf, ports=container.aws_ports(conf, clients),
        key_service=KeyServiceClient(InProcessTransport(_MeteredCore(fleet.cores[core], meter))),
        clock=fleet.clock, local_clock=fleet.clock, secrets=fleet.secrets,
    )
    for role in ("queues", "accounts", "messages", "long_poll", "payloads"):
        meter.watch(clients.get(role))
    # sqs_client calls only ``handle``, which the metered handler passes on.
    return sqs_client(cast(Any, _MeteredHandler(frontend, meter)))


# -- the workload ---------------------------------------------------------------------------


def cycle(producer: Any, consumer: Any, url: str, batch: int) -> int:
    """Send ``batch`` messages, receive them all, delete them; how many went round."""
    if batch == 1:
        producer.send_message(QueueUrl=url, MessageBody=BODY)
    else:
        entries = [{"Id": str(n), "MessageBody": BODY} for n in range(batch)]
        if producer.send_message_batch(QueueUrl=url, Entries=entries).get("Failed"):
            raise AssertionError("a send failed")
    got: list[dict[str, Any]] = []
    for _ in range(10):
        if len(got) == batch:
            break
        got += consumer.receive_message(QueueUrl=url, MaxNumberOfMessages=batch - len(got)
                                        ).get("Messages", [])
    if len(got) != batch or any(m["Body"] != BODY for m in got):
        raise AssertionError(f"received {len(got)} of {batch}")
    if batch == 1:
        consumer.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    else:
        out = consumer.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])
        if out.get("Failed"):
            raise AssertionError("a delete failed")
    return batch


@dataclass(frozen=True)
class Counts:
    """What one function did, per message (or per event for the time-driven rows)."""

    api_requests: float = 0.0
    handler_cpu_ms: float = 0.0
    backing_sqs: float = 0.0
    ddb_reads: float = 0.0
    ddb_writes: float = 0.0
    s3_puts: float = 0.0
    s3_gets: float = 0.0
    key_service_invocations: float = 0.0
    key_service_cpu_ms: float = 0.0
    kms: float = 0.0
    # AWS calls by service, per function, for the assumed network wait
    handler_waits: Mapping[str, float] = field(default_factory=dict)
    key_service_waits: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, meter: Meter, per: float) -> Counts:
        def waits(owner: str) -> dict[str, float]:
            found: collections.Counter[str] = collections.Counter()
            for (o, service, _), n in meter.calls.items():
                if o == owner:
                    found[service] += n
            return {s: n / per for s, n in found.items()}

        return cls(
            api_requests=meter.invocations["handler"] / per,
            handler_cpu_ms=meter.cpu_ms["handler"] / per,
            backing_sqs=meter.total("handler", "sqs") / per,
            ddb_reads=meter.total(service="dynamodb", operations=_READS) / per,
            ddb_writes=meter.total(service="dynamodb", operations=_WRITES) / per,
            s3_puts=meter.total(service="s3", operations={"PutObject", "CopyObject",
                                                          "ListObjectsV2"}) / per,
            s3_gets=meter.total(service="s3", operations={"GetObject", "HeadObject"}) / per,
            key_service_invocations=meter.invocations["key service"] / per,
            key_service_cpu_ms=meter.cpu_ms["key service"] / per,
            kms=meter.total("key service", "kms") / per,
            handler_waits=waits("handler"),
            key_service_waits=waits("key service"),
        )

    def minus(self, other: Counts) -> Counts:
        def less(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
            return {k: max(0.0, a.get(k, 0.0) - b.get(k, 0.0)) for k in set(a) | set(b)}

        fields = {name: max(0.0, getattr(self, name) - getattr(other, name))
                  for name in ("api_requests", "handler_cpu_ms", "backing_sqs", "ddb_reads",
                               "ddb_writes", "s3_puts", "s3_gets", "key_service_invocations",
                               "key_service_cpu_ms", "kms")}
        return Counts(**fields, handler_waits=less(self.handler_waits, other.handler_waits),
                      key_service_waits=less(self.key_service_waits, other.key_service_waits))

    def plus(self, other: Counts, weight: float = 1.0) -> Counts:
        def more(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
            return {k: a.get(k, 0.0) + weight * b.get(k, 0.0) for k in set(a) | set(b)}

        fields = {name: getattr(self, name) + weight * getattr(other, name)
                  for name in ("api_requests", "handler_cpu_ms", "backing_sqs", "ddb_reads",
                               "ddb_writes", "s3_puts", "s3_gets", "key_service_invocations",
                               "key_service_cpu_ms", "kms")}
        return Counts(**fields, handler_waits=more(self.handler_waits, other.handler_waits),
                      key_service_waits=more(self.key_service_waits, other.key_service_waits))


@dataclass(frozen=True)
class Measured:
    batch: int
    messages: int
    steady: Counts  # per message, the caches warm, the clocks still
    # Per event (both containers once): the extra one cycle costs after each expiry.
    queue_refresh: Counts
    auth_refresh: Counts
    key_refresh: Counts
    sqs_requests: float  # the same workload on SQS itself, per message
    reuse_period: int  # the queue's KmsDataKeyReusePeriodSeconds (D)


def measure(batch: int, cycles: int) -> Measured:
    """Needs an active moto with sealq's resources (``moto_stack``)."""
    conf = settings.get()
    clock = FakeClock()
    fleet = Fleet(clock, key_service_containers=2)
    meter = Meter()
    for kms in fleet.kms_clients:
        meter.watch(kms)
    meter.watch(fleet.key_records)
    producer = _metered_client(fleet, 0, meter)
    consumer = _metered_client(fleet, 1, meter)
    url = producer.create_queue(QueueName=f"cost-{batch}")["QueueUrl"]
    for _ in range(2):  # warm: keys fetched, records cached, connections open
        cycle(producer, consumer, url, batch)
    meter.reset()
    messages = sum(cycle(producer, consumer, url, batch) for _ in range(cycles))
    steady = Counts.of(meter, messages)
    steady_cycle = Counts.of(meter, cycles)

    def after(seconds: float) -> Counts:
        """What one more cycle costs beyond a steady one, ``seconds`` later."""
        meter.reset()
        clock.advance(seconds)
        cycle(producer, consumer, url, batch)
        return Counts.of(meter, 1).minus(steady_cycle)

    queue_refresh = after(conf.queue_cache_ttl + 0.5)
    auth_refresh = after(conf.auth_cache_ttl + 0.5).minus(queue_refresh)
    # A queue sealed under the service's own key lists no reuse period (as SSE-SQS):
    # it has the default.
    reuse = int(producer.get_queue_attributes(
        QueueUrl=url, AttributeNames=["KmsDataKeyReusePeriodSeconds"]).get(
        "Attributes", {}).get("KmsDataKeyReusePeriodSeconds",
                              INT_ATTRIBUTES["KmsDataKeyReusePeriodSeconds"][2]))
    key_refresh = after(reuse + 1).minus(queue_refresh).minus(auth_refresh)
    return Measured(batch, messages, steady, queue_refresh, auth_refresh, key_refresh,
                    sqs_requests=sqs_itself(batch, cycles), reuse_period=reuse)


def sqs_itself(batch: int, cycles: int) -> float:
    """The same cycles on (moto's) SQS with a plain boto3 client: requests per message."""
    sqs = SESSION.client("sqs", region_name=settings.get().region)
    made = collections.Counter[str]()
    sqs.meta.events.register("before-call.sqs", lambda model, **_: made.update([model.name]))
    url = sqs.create_queue(QueueName=f"plain-{batch}")["QueueUrl"]
    cycle(sqs, sqs, url, batch)
    made.clear()
    messages = sum(cycle(sqs, sqs, url, batch) for _ in range(cycles))
    return sum(made.values()) / messages


def entry_overhead_ms(rounds: int) -> dict[str, float]:
    """CPU ms per request that the Lambda entry (``app.app``: Chalice reading API
    Gateway's event, sealq's gateway module, the proxy response) adds to the container's
    own work, per API type: one signed, warm GetQueueUrl (the queue record cached: no
    backing call) answered through ``app.app`` and straight through
    ``container.serve_http``, call by call in turn."""
    import app  # noqa: F401 - loaded first: it sets its logger's level when imported

    found: dict[str, float] = {}
    # Chalice's app logs each request's INFO line through its own handler: both sides
    # write the same line, so it is kept out of both.
    quiet = logging.getLogger("sealq")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        for api_type in API_TYPES:
            found[api_type] = _entry_ms(api_type, rounds)
    finally:
        quiet.setLevel(level)
    return found


def _entry_ms(api_type: str, rounds: int) -> float:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    import app as sealq_app
    from chalicelib.handler import gateway
    from tests.api_gateway import Front, Gateway, LambdaContext, proxy_event
    from tests.harness import REGION, TEST_CREDENTIALS

    front = Front(api_type.lower(), api=api_type)
    client = SESSION.client(
        "sqs", region_name=REGION, endpoint_url=front.url,
        aws_access_key_id=TEST_CREDENTIALS.access_key,
        aws_secret_access_key=TEST_CREDENTIALS.secret_key)
    client.meta.events.register("before-send.sqs.*", Gateway(front))
    client.create_queue(QueueName="entry")
    request = AWSRequest(method="POST", url=front.url + "/", data=b'{"QueueName": "entry"}',
                         headers={"Content-Type": "application/x-amz-json-1.0",
                                  "X-Amz-Target": "AmazonSQS.GetQueueUrl"})
    SigV4Auth(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)
    event = proxy_event(front, request, base64_body=False)
    context = LambdaContext()
    headers = gateway.request_headers(event)
    body = str(event["body"]).encode()

    def through_app() -> Any:
        return sealq_app.app(event, context)

    def direct() -> Any:
        return container.serve_http(headers, body, event["requestContext"], context, None)

    spent = {"app": 0.0, "direct": 0.0}
    for n in range(rounds + 5):
        for name, call in (("app", through_app), ("direct", direct)):
            began = time.process_time()
            call()
            if n >= 5:  # the first few warm both
                spent[name] += time.process_time() - began
    return max(0.0, (spent["app"] - spent["direct"]) / rounds * 1000.0)


def idle_long_polls(wait_seconds: int = 20) -> dict[str, float]:
    """An empty queue's consumer long-polling for an hour, in requests and billed seconds.

    SQS answers each poll after ``wait_seconds``; the handler cuts a poll to what its
    invocation can spare (``timeouts.long_poll_seconds``) and is billed for the whole
    wait, so the client polls again sooner, each time a Lambda invocation."""
    from chalicelib import timeouts

    cut = timeouts.long_poll_seconds(wait_seconds, float(timeouts.HANDLER_LAMBDA_SECONDS))
    return {"handler_poll_seconds": float(cut), "handler_polls": 3600.0 / max(cut, 1),
            "sqs_polls": 3600.0 / wait_seconds}


def idle_bills(idle: Mapping[str, float]) -> dict[str, float]:
    """USD per consumer-hour of empty long polls, per column."""
    memory = _memory_mb()["handler"]
    price = {k: v[0] for k, v in PRICES.items()}
    polls = idle["handler_polls"]
    lambda_usd = polls * (price["lambda_request"] + idle["handler_poll_seconds"] * memory
                          / 1024.0 * price["lambda_gb_second"])
    backing = polls * price["sqs_request"]
    return {"sealq REST": polls * price["api_rest"] + lambda_usd + backing,
            "sealq HTTP": polls * price["api_http"] + lambda_usd + backing,
            "SQS + SSE-KMS": idle["sqs_polls"] * price["sqs_request"]}


# -- dollars ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    """USD per million messages, line by line."""

    lines: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lines.values())


def _ceil_ms(ms: float) -> float:
    return float(math.ceil(ms)) if ms > 0 else 0.0


def model(found: Measured, rate: float = ASSUMED_RATE) -> tuple[Counts, dict[str, float]]:
    """Per message, the steady counts plus the time-driven ones spread over ``rate``;
    and the assumptions that took (warm handler containers)."""
    steady = found.steady
    per_request_ms = (steady.handler_cpu_ms + sum(
        n * ASSUMED_WAIT_MS.get(s, 0.0) for s, n in steady.handler_waits.items())
        ) / max(steady.api_requests, 1e-9)
    # Warm containers: the request rate times how long each request holds one.
    containers = max(2.0, math.ceil(rate * steady.api_requests * per_request_ms / 1000.0))
    reuse = float(found.reuse_period)
    conf = settings.get()
    per_container = containers / 2.0  # the refreshes were measured on two containers
    counts = steady
    counts = counts.plus(found.queue_refresh, per_container / (rate * conf.queue_cache_ttl))
    counts = counts.plus(found.auth_refresh, per_container / (rate * conf.auth_cache_ttl))
    counts = counts.plus(found.key_refresh, per_container / (rate * reuse))
    return counts, {"containers": containers, "per_request_ms": per_request_ms}


def bill(counts: Counts, api_type: str, entry_ms: float = 0.0) -> Bill:
    """``entry_ms``: the Lambda entry's CPU per request for this API type's events."""
    memory = _memory_mb()

    def duration_gb_s(cpu_ms: float, invocations: float, waits: Mapping[str, float],
                      mb: int) -> float:
        if invocations <= 0:
            return 0.0
        wait = sum(n * ASSUMED_WAIT_MS.get(s, 0.0) for s, n in waits.items())
        billed = _ceil_ms((cpu_ms + wait) / invocations) * invocations  # 1 ms increments
        return billed / 1000.0 * mb / 1024.0

    price = {k: v[0] for k, v in PRICES.items()}
    million = 1e6
    handler_gb_s = duration_gb_s(counts.handler_cpu_ms + entry_ms * counts.api_requests,
                                 counts.api_requests, counts.handler_waits, memory["handler"])
    service_gb_s = duration_gb_s(counts.key_service_cpu_ms, counts.key_service_invocations,
                                 counts.key_service_waits, memory["key service"])
    return Bill({
        "API Gateway": counts.api_requests * price[
            "api_rest" if api_type == "REST" else "api_http"] * million,
        "Lambda requests (handler)": counts.api_requests * price["lambda_request"] * million,
        "Lambda duration (handler)": handler_gb_s * price["lambda_gb_second"] * million,
        "Lambda (key service)": (counts.key_service_invocations * price["lambda_request"]
                                 + service_gb_s * price["lambda_gb_second"]) * million,
        "SQS requests": counts.backing_sqs * price["sqs_request"] * million,
        "DynamoDB": (counts.ddb_reads * price["ddb_read"]
                     + counts.ddb_writes * price["ddb_write"]) * million,
        "S3": (counts.s3_puts * price["s3_put"] + counts.s3_gets * price["s3_get"]) * million,
        "KMS": counts.kms * price["kms_request"] * million,
    })


def sqs_bill(found: Measured, rate: float = ASSUMED_RATE) -> Bill:
    """SQS with SSE-KMS: its requests, and KMS by R = B/D x (2P + C) per queue."""
    producers, consumers = ASSUMED_PRINCIPALS
    seconds_per_million = 1e6 / rate
    kms = seconds_per_million / found.reuse_period * (2 * producers + consumers)
    return Bill({
        "SQS requests": found.sqs_requests * PRICES["sqs_request"][0] * 1e6,
        "KMS": kms * PRICES["kms_request"][0],
    })


# -- running and printing -------------------------------------------------------------------


@dataclass(frozen=True)
class CostResult:
    measured: dict[int, Measured]
    modelled: dict[int, tuple[Counts, dict[str, float]]]
    entry_ms: dict[str, float]  # per API type
    bills: dict[tuple[str, int], Bill]  # (column, batch)
    idle: dict[str, float]  # USD per consumer-hour of empty long polls, per column
    idle_polls: dict[str, float]


def run(*, quick: bool = False) -> CostResult:
    """Measure both batch sizes; needs an active moto (``moto_stack``)."""
    cycles = {1: 8 if quick else 500, 10: 2 if quick else 100}
    measured = {batch: measure(batch, cycles[batch]) for batch in BATCHES}
    modelled = {batch: model(found) for batch, found in measured.items()}
    entry = entry_overhead_ms(20 if quick else 300)
    bills: dict[tuple[str, int], Bill] = {}
    for batch in BATCHES:
        counts, _ = modelled[batch]
        for api_type in API_TYPES:
            bills[(f"sealq {api_type}", batch)] = bill(counts, api_type, entry[api_type])
        bills[("SQS + SSE-KMS", batch)] = sqs_bill(measured[batch])
    polls = idle_long_polls()
    return CostResult(measured, modelled, entry, bills, idle_bills(polls), polls)


COLUMNS = ("sealq REST", "sealq HTTP", "SQS + SSE-KMS")
SHORT = {"sealq REST": "REST", "sealq HTTP": "HTTP", "SQS + SSE-KMS": "SQS"}


def format_table(result: CostResult) -> str:
    out = [f"sealq: what a million 1 KiB messages cost (send + receive + delete), python "
           f"{platform.python_version()}, moto in-process; list prices of {PRICES_DATE}, "
           "us-east-1", ""]
    header = f"{'per message':<36}" + "".join(f"{f'batch {b}':>14}" for b in BATCHES)
    out += ["measured " + "(steady state, caches warm)", header, "-" * len(header)]
    rows = [
        ("API requests = handler invocations", "api_requests", "{:.2f}"),
        ("handler CPU ms (in-process)", "handler_cpu_ms", "{:.2f}"),
        ("backing SQS requests", "backing_sqs", "{:.2f}"),
        ("DynamoDB reads / writes", None, None),
        ("S3 calls", None, None),
        ("key-service invocations", "key_service_invocations", "{:.4f}"),
        ("KMS requests", "kms", "{:.4f}"),
    ]
    for label, name, fmt in rows:
        cells = []
        for batch in BATCHES:
            steady = result.measured[batch].steady
            if label.startswith("DynamoDB"):
                cells.append(f"{steady.ddb_reads:.2f} / {steady.ddb_writes:.2f}")
            elif label.startswith("S3"):
                cells.append(f"{steady.s3_puts + steady.s3_gets:.2f}")
            else:
                assert name is not None and fmt is not None
                cells.append(fmt.format(getattr(steady, name)))
        out.append(f"{label:<36}" + "".join(f"{c:>14}" for c in cells))
    out.append(f"{'SQS itself: requests':<36}" + "".join(
        f"{result.measured[b].sqs_requests:>14.2f}" for b in BATCHES))
    out += ["", "measured per expiry (a cycle after it, less a steady cycle; two containers)"]
    for label, attr in (("queue records (every queue TTL)", "queue_refresh"),
                        ("access keys (every auth TTL)", "auth_refresh"),
                        ("data keys (every reuse period)", "key_refresh")):
        for batch in BATCHES:
            c: Counts = getattr(result.measured[batch], attr)
            out.append(f"  {label}, batch {batch}: DynamoDB {c.ddb_reads:.0f} reads / "
                       f"{c.ddb_writes:.0f} writes, key service {c.key_service_invocations:.0f}, "
                       f"KMS {c.kms:.0f}")
    out.append("Lambda entry CPU ms per request (app.app over serve_http): " + ", ".join(
        f"{api_type} events {ms:.2f}" for api_type, ms in result.entry_ms.items()))
    out += ["", "USD per million messages (columns: sealq on the REST API, sealq on the HTTP "
            "API, SQS itself with SSE-KMS; b = batch size)"]
    header = f"{'':<26}" + "".join(f"{f'{SHORT[col]} b{b}':>10}" for b in BATCHES
                                   for col in COLUMNS)
    out += [header, "-" * len(header)]
    names: list[str] = []
    for bill_ in result.bills.values():
        names += [n for n in bill_.lines if n not in names]
    for name in names:
        cells = []
        for batch in BATCHES:
            for col in COLUMNS:
                value = result.bills[(col, batch)].lines.get(name)
                cells.append("-" if value is None else f"{value:.4f}")
        out.append(f"{name:<26}" + "".join(f"{c:>10}" for c in cells))
    totals = [f"{result.bills[(col, b)].total:.2f}" for b in BATCHES for col in COLUMNS]
    out.append(f"{'total':<26}" + "".join(f"{t:>10}" for t in totals))
    ratios = []
    for batch in BATCHES:
        sqs_total = result.bills[("SQS + SSE-KMS", batch)].total
        ratios += [f"{result.bills[(col, batch)].total / sqs_total:.1f}x" for col in COLUMNS]
    out.append(f"{'vs SQS + SSE-KMS':<26}" + "".join(f"{r:>10}" for r in ratios))
    polls = result.idle_polls
    out += ["", f"an empty queue's consumer long-polling (WaitTimeSeconds=20) for an hour: "
            f"SQS answers {polls['sqs_polls']:.0f} polls; the handler cuts each to "
            f"{polls['handler_poll_seconds']:.0f} s (chalicelib/timeouts.py) and is billed "
            f"for it: {polls['handler_polls']:.0f} invocations",
            "  USD per consumer-hour: " + ", ".join(
                f"{col} {usd:.4f}" for col, usd in result.idle.items())]
    memory = _memory_mb()
    out += ["", "assumed, not measured:",
            "  network wait per AWS call (ms): " + ", ".join(
                f"{s} {ms:g}" for s, ms in ASSUMED_WAIT_MS.items()),
            f"  {ASSUMED_RATE:g} messages/s through the queue; warm handler containers = "
            "request rate x time each request holds one (at least 2): " + ", ".join(
                f"batch {b}: {result.modelled[b][1]['containers']:.0f}" for b in BATCHES),
            f"  billed duration = CPU ms + waits, rounded up to 1 ms per invocation, at the "
            f"prod memory sizes (handler {memory['handler']} MB, key service "
            f"{memory['key service']} MB)",
            "  DynamoDB items under 1 KB written, 4 KB read (strongly consistent: 1 read unit "
            "each); 1 KiB bodies stay inline (no S3)",
            f"  SQS's KMS formula with P = {ASSUMED_PRINCIPALS[0]} producer and C = "
            f"{ASSUMED_PRINCIPALS[1]} consumer principal, D = 300 s",
            "  not counted on either side: free tiers, data transfer, CloudWatch Logs and "
            "metrics, X-Ray, storage",
            "", f"prices ({PRICES_DATE}):"]
    out += [f"  ${value:.10g} per {unit}: {page}" for value, unit, page in PRICES.values()]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_cost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few cycles per batch size")
    args = parser.parse_args(argv)
    with moto_stack():
        result = run(quick=args.quick)
    print(format_table(result), flush=True)


if __name__ == "__main__":
    main()
