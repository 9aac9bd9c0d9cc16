"""Soak: never a lost or hidden message, over real HTTP, with bad messages injected mid-run.

Run from the repo root: ``python -m bench.soak`` (``make soak``; ``--quick`` for the short
variant the tests run). It starts a moto server and ``python -m tools.local.devserver`` pointed at
it, each in its own process, exactly as ``bench.bench_http`` does, then:

- creates a standard queue and a FIFO queue (content-based deduplication) with a short
  visibility timeout, and sends most messages to the standard one;
- producers (threads, one boto3 client each, one shared session) send bodies of mixed
  sizes — mostly 100 B–4 KiB, some 64 KiB, a few over 300 KiB (sealed, those go to S3) —
  with SendMessage and SendMessageBatch, message attributes on some; every body carries a
  unique id and the sha256 of the rest, so any corruption shows;
- consumers long-poll, check each body's checksum, MD5OfBody, attributes and their MD5,
  delete with DeleteMessage and DeleteMessageBatch, and record what they got; a second
  delivery of an id is a duplicate (at-least-once), counted, not an error;
- after about a third of the messages were sent, copies of stored messages are altered and
  written straight into the *backing* queues through moto: tampered (one bit of the
  ciphertext, or of an S3 payload) must be quarantined; "KMS-refused" (one bit of the CMK
  ARN's key id, or of the encrypted data key) must be left in the queue. Neither may ever
  reach a consumer;
- once every healthy message arrived (or the drain timeout passed), it reports sent,
  received, lost, corrupt, duplicates, what happened to each injected message (quarantine
  listing, backing-queue counts, the server's log lines about it), HTTP errors by code,
  latencies and throughput.

Exit status 1 when a message was lost or corrupt, an injected message was delivered or not
handled as required, the asked injections could not be made, or any HTTP 5xx was seen
(botocore retries those: every attempt is counted by a ``response-received`` hook). Dummy
credentials, 127.0.0.1 only: nothing here can reach a real account.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import queue
import random
import re
import secrets
import struct
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bench import bench_http
from bench.bench_http import DUMMY_ENV, REGION, percentile

STANDARD = "standard"
FIFO = "fifo"
PAYLOAD_BUCKET = "sealq-payloads"  # the devserver child runs with a clean environment
BACKING_PREFIX = "sealq-"
QUARANTINE_PREFIX = "quarantine/"
SMALL = (100, 4096)
MEDIUM = 64 * 1024
LARGE = (300 * 1024, 420 * 1024)
_ARN = re.compile(rb"arn:aws:kms:[a-z0-9-]+:[0-9]{12}:key/")
# At most this many corrupt deliveries are described in the report.
_SHOWN = 10
# Seconds the injector may still look for messages to copy once a third was sent.
SAMPLE_GRACE = 10.0


@dataclass(frozen=True)
class Workload:
    """How much to do; the defaults are the published run."""

    messages: int = 6000
    producers: int = 10
    consumers: int = 10
    tampered: int = 4
    refused: int = 4
    visibility: int = 6
    wait_seconds: int = 1
    drain_timeout: float = 120.0
    # Producers wait while this many sent messages are not yet received: moto's queues scan
    # every stored message per call, so an unbounded backlog measures moto, not sealq.
    max_backlog: int = 400
    fifo_every: int = 5  # every 5th message goes to the FIFO queue
    medium_every: int = 12  # every 12th is 64 KiB
    large_every: int = 100  # every 100th is over 300 KiB (the S3 path)
    seed: int = 20240601

    @classmethod
    def quick(cls) -> Workload:
        """200 messages, two producers and two consumers, one tampered and two refused."""
        return cls(messages=200, producers=2, consumers=2, tampered=1, refused=2,
                   drain_timeout=30.0, large_every=50)


# -- messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One planned message."""

    id: str
    kind: str  # STANDARD or FIFO
    size: int
    attributes: bool
    group: str | None


def plan(work: Workload) -> list[list[Spec]]:
    """The sends, in order: a list of one spec is SendMessage, longer is SendMessageBatch."""
    rng = random.Random(work.seed)
    specs: list[Spec] = []
    for index in range(work.messages):
        kind = FIFO if index % work.fifo_every == work.fifo_every - 1 else STANDARD
        if index % work.large_every == work.large_every // 2:
            size = rng.randint(*LARGE)
        elif index % work.medium_every == 0:
            size = MEDIUM
        else:
            size = rng.randint(*SMALL)
        group = f"g{rng.randrange(8)}" if kind == FIFO else None
        specs.append(Spec(f"m{index:06d}", kind, size, index % 3 == 0, group))
    sends: list[list[Spec]] = []
    pending: dict[str, list[Spec]] = {STANDARD: [], FIFO: []}
    target = {STANDARD: rng.randint(2, 10), FIFO: rng.randint(2, 10)}
    for spec in specs:
        # Large bodies alone; about half the rest in batches of 2-10, per queue.
        if spec.size >= LARGE[0] or rng.random() < 0.5:
            sends.append([spec])
            continue
        batch = pending[spec.kind]
        batch.append(spec)
        if len(batch) == target[spec.kind]:
            sends.append(batch)
            pending[spec.kind] = []
            target[spec.kind] = rng.randint(2, 10)
    sends.extend(batch for batch in pending.values() if batch)
    return sends


def make_body(spec: Spec) -> str:
    """``<id>:<sha256 of "<id>:<payload>">:<payload>``, ``spec.size`` characters long."""
    head = len(spec.id) + 1 + 64 + 1
    raw = random.Random(spec.id).randbytes(spec.size)
    payload = base64.b64encode(raw).decode("ascii")[: max(1, spec.size - head)]
    digest = hashlib.sha256(f"{spec.id}:{payload}".encode()).hexdigest()
    return f"{spec.id}:{digest}:{payload}"


def body_id(body: str) -> str | None:
    """The id of a body whose checksum holds, else None."""
    parts = body.split(":", 2)
    if len(parts) != 3:
        return None
    ident, digest, payload = parts
    if hashlib.sha256(f"{ident}:{payload}".encode()).hexdigest() != digest:
        return None
    return ident


def attributes_for(spec: Spec) -> dict[str, dict[str, Any]]:
    """The message attributes a spec is sent with (empty for most)."""
    if not spec.attributes:
        return {}
    return {
        "soak-id": {"DataType": "String", "StringValue": spec.id},
        "soak-size": {"DataType": "Number", "StringValue": str(spec.size)},
        "soak-blob": {"DataType": "Binary.sha", "BinaryValue": hashlib.sha256(
            spec.id.encode()).digest()[:12]},
    }


def md5_of_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """MD5OfMessageAttributes as AWS documents it (written here again, not sealq's)."""
    digest = hashlib.md5()  # noqa: S324 - SQS's checksum, not a security use
    for name in sorted(attributes):
        attr = attributes[name]
        data_type = attr["DataType"]
        for text in (name, data_type):
            encoded = text.encode("utf-8")
            digest.update(struct.pack(">I", len(encoded)) + encoded)
        if "BinaryValue" in attr:
            value = bytes(attr["BinaryValue"])
            digest.update(b"\x02")
        else:
            value = attr["StringValue"].encode("utf-8")
            digest.update(b"\x01")
        digest.update(struct.pack(">I", len(value)) + value)
    return digest.hexdigest()


# -- tampering with stored ESDK messages -----------------------------------------------


@dataclass(frozen=True)
class EdkSpan:
    """Where the (single) encrypted data key's provider info and key sit in a message."""

    info: tuple[int, int]
    key: tuple[int, int]


def edk_span(sealed: bytes) -> EdkSpan:
    """Parse a version-2 ESDK header up to its first encrypted data key."""
    if sealed[:1] != b"\x02":
        raise ValueError("not a version 2 ESDK message")
    pos = 1 + 2 + 32  # version, suite id, message id

    def u16() -> int:
        nonlocal pos
        value = int.from_bytes(sealed[pos:pos + 2], "big")
        pos += 2
        return value

    # Not ``pos += u16()``: that would add to pos as it was before u16 moved it.
    context_len = u16()
    pos += context_len
    if u16() < 1:
        raise ValueError("no encrypted data key")
    provider_len = u16()
    pos += provider_len
    info_len = u16()
    info = (pos, pos + info_len)
    pos += info_len
    key_len = u16()
    return EdkSpan(info=info, key=(pos, pos + key_len))


def flip(data: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << bit
    return bytes(out)


def tamper_ciphertext(sealed: bytes) -> bytes:
    """One bit of the last frame's encrypted content, just before its 16-byte tag."""
    return flip(sealed, len(sealed) - 17)


def refuse_arn(sealed: bytes) -> bytes:
    """One bit of a digit in the CMK ARN's key id: a well-formed ARN of a key that is not there."""
    span = edk_span(sealed)
    found = _ARN.search(sealed, span.info[0], span.info[1])
    if found is None:
        raise ValueError("no KMS key ARN in the provider info")
    for index in range(found.end(), span.info[1]):
        if chr(sealed[index]).isdigit():
            return flip(sealed, index)  # '0'..'9' xor 1 stays a digit
    raise ValueError("no digit in the key id")


def refuse_edk(sealed: bytes) -> bytes:
    """One bit near the end of the encrypted data key (its authentication tag)."""
    span = edk_span(sealed)
    return flip(sealed, span.key[1] - 3)


# -- the run's record -------------------------------------------------------------------


@dataclass(frozen=True)
class Injected:
    kind: str  # tampered-ciphertext, tampered-s3, refused-arn, refused-edk
    queue: str
    message_id: str

    @property
    def tampered(self) -> bool:
        return self.kind.startswith("tampered")


@dataclass
class Record:
    """Everything the threads observe; one lock for all of it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    send_started: dict[str, float] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    send_failed: set[str] = field(default_factory=set)
    deliveries: Counter[str] = field(default_factory=Counter)
    delivered_ids: dict[str, str] = field(default_factory=dict)  # sealq MessageId -> body id
    delivery_latency: list[float] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)  # "Operation code" per failed call
    responses: Counter[str] = field(default_factory=Counter)  # every HTTP attempt: status/code
    http_5xx: int = 0
    injected: list[Injected] = field(default_factory=list)
    injection_notes: list[str] = field(default_factory=list)
    sent_at_injection: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    last_first_delivery: float = 0.0

    def timing(self, name: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(name, []).append(seconds)

    def on_response(self, **kwargs: Any) -> None:
        """botocore's ``response-received``: one call per HTTP attempt, retries included."""
        exception = kwargs.get("exception")
        response = kwargs.get("response_dict")
        with self.lock:
            if exception is not None:
                self.responses[f"no response ({type(exception).__name__})"] += 1
                return
            status = int((response or {}).get("status_code", 0))
            if status >= 400:
                parsed = kwargs.get("parsed_response") or {}
                code = parsed.get("Error", {}).get("Code", "?")
                self.responses[f"{status} {code}"] += 1
            if status >= 500:
                self.http_5xx += 1


# -- clients --------------------------------------------------------------------------


def _session() -> Any:
    return boto3.session.Session(
        aws_access_key_id=DUMMY_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )


def _sqs(session: Any, endpoint: str, record: Record | None, work: Workload) -> Any:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 5},
        connect_timeout=5,
        read_timeout=work.wait_seconds + 30,
        max_pool_connections=4,
    )
    client = session.client("sqs", endpoint_url=endpoint, region_name=REGION, config=config)
    if record is not None:
        client.meta.events.register("response-received.sqs", record.on_response)
    return client


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", "?"))


# -- producers and consumers ------------------------------------------------------------


def _backlog(record: Record) -> int:
    with record.lock:
        return len(record.sent) - len(set(record.deliveries) & record.sent)


def _produce(sqs: Any, urls: Mapping[str, str], work_queue: queue.Queue[list[Spec]],
             record: Record, work: Workload, third_sent: threading.Event) -> None:
    third = max(1, work.messages // 3)
    while True:
        try:
            batch = work_queue.get_nowait()
        except queue.Empty:
            return
        waited = time.monotonic()
        # Bounded: a stuck backlog (lost messages) must show in the report, not hang here.
        while _backlog(record) >= work.max_backlog and (
                time.monotonic() - waited < work.drain_timeout):
            time.sleep(0.02)
        url = urls[batch[0].kind]
        began = time.monotonic()
        with record.lock:
            for spec in batch:
                record.send_started[spec.id] = began
            if not record.first_send:
                record.first_send = began
        ok: list[str] = []
        try:
            if len(batch) == 1:
                spec = batch[0]
                kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": make_body(spec)}
                if spec.attributes:
                    kwargs["MessageAttributes"] = attributes_for(spec)
                if spec.group:
                    kwargs["MessageGroupId"] = spec.group
                sqs.send_message(**kwargs)
                ok.append(spec.id)
                record.timing("SendMessage", time.monotonic() - began)
            else:
                entries = []
                for spec in batch:
                    entry: dict[str, Any] = {"Id": spec.id, "MessageBody": make_body(spec)}
                    if spec.attributes:
                        entry["MessageAttributes"] = attributes_for(spec)
                    if spec.group:
                        entry["MessageGroupId"] = spec.group
                    entries.append(entry)
                out = sqs.send_message_batch(QueueUrl=url, Entries=entries)
                record.timing("SendMessageBatch", time.monotonic() - began)
                ok.extend(item["Id"] for item in out.get("Successful", []))
                for item in out.get("Failed", []):
                    with record.lock:
                        record.errors[f"SendMessageBatch entry {item.get('Code')}"] += 1
        except ClientError as err:
            with record.lock:
                record.errors[f"{err.operation_name} {_code(err)}"] += 1
        except BotoCoreError as err:
            with record.lock:
                record.errors[f"send {type(err).__name__}"] += 1
        with record.lock:
            record.sent.update(ok)
            record.send_failed.update(spec.id for spec in batch if spec.id not in ok)
            record.last_send = time.monotonic()
            if len(record.sent) >= third:
                third_sent.set()


def _check(message: Mapping[str, Any], specs: Mapping[str, Spec], kind: str) -> str | None:
    """The body's id if the delivery is intact and belongs here; raises ValueError if not."""
    body = message.get("Body", "")
    if message.get("MD5OfBody") != hashlib.md5(body.encode("utf-8")).hexdigest():  # noqa: S324
        raise ValueError("MD5OfBody does not match the body")
    ident = body_id(body)
    if ident is None:
        raise ValueError("body checksum does not hold")
    spec = specs.get(ident)
    if spec is None:
        raise ValueError(f"unknown id {ident[:20]!r}")
    if spec.kind != kind:
        raise ValueError(f"{ident} delivered on the {kind} queue, sent to {spec.kind}")
    got = message.get("MessageAttributes") or {}
    if got != attributes_for(spec):
        raise ValueError(f"{ident}: message attributes differ from those sent")
    if got and message.get("MD5OfMessageAttributes") != md5_of_attributes(got):
        raise ValueError(f"{ident}: MD5OfMessageAttributes does not match")
    group = (message.get("Attributes") or {}).get("MessageGroupId")
    if spec.group != group:
        raise ValueError(f"{ident}: MessageGroupId {group!r}, sent with {spec.group!r}")
    return ident


def _consume(sqs: Any, url: str, kind: str, specs: Mapping[str, Spec], record: Record,
             work: Workload, stop: threading.Event) -> None:
    rounds = 0
    while not stop.is_set():
        began = time.monotonic()
        try:
            out = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=work.wait_seconds,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            )
        except ClientError as err:
            with record.lock:
                record.errors[f"ReceiveMessage {_code(err)}"] += 1
            continue
        except BotoCoreError as err:
            with record.lock:
                record.errors[f"ReceiveMessage {type(err).__name__}"] += 1
            continue
        now = time.monotonic()
        messages = out.get("Messages", [])
        if not messages:
            continue
        record.timing("ReceiveMessage (non-empty)", now - began)
        for message in messages:
            try:
                ident = _check(message, specs, kind)
            except ValueError as err:
                with record.lock:
                    record.corrupt.append(f"{message.get('MessageId')}: {err}")
                continue
            assert ident is not None
            with record.lock:
                record.deliveries[ident] += 1
                record.delivered_ids[message["MessageId"]] = ident
                if record.deliveries[ident] == 1:
                    started = record.send_started.get(ident)
                    if started is not None:
                        record.delivery_latency.append(now - started)
                    record.last_first_delivery = now
        _delete(sqs, url, messages, record, batch=rounds % 2 == 0 and len(messages) > 1)
        rounds += 1


def _delete(sqs: Any, url: str, messages: Sequence[Mapping[str, Any]], record: Record,
            batch: bool) -> None:
    """Delete everything received, corrupt deliveries included (counted already)."""
    began = time.monotonic()
    try:
        if batch:
            out = sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ])
            record.timing("DeleteMessageBatch", time.monotonic() - began)
            for item in out.get("Failed", []):
                with record.lock:
                    record.errors[f"DeleteMessageBatch entry {item.get('Code')}"] += 1
            return
        for message in messages:
            began = time.monotonic()
            try:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            except ClientError as err:
                with record.lock:
                    record.errors[f"DeleteMessage {_code(err)}"] += 1
            else:
                record.timing("DeleteMessage", time.monotonic() - began)
    except ClientError as err:
        with record.lock:
            record.errors[f"{err.operation_name} {_code(err)}"] += 1
    except BotoCoreError as err:
        with record.lock:
            record.errors[f"delete {type(err).__name__}"] += 1


# -- injection into the backing store -----------------------------------------------------


@dataclass
class Backing:
    """The backing queues behind the soak's two queues, reached through moto directly."""

    sqs: Any
    s3: Any
    urls: dict[str, str]

    @classmethod
    def find(cls, session: Any, moto_url: str) -> Backing:
        sqs = session.client("sqs", endpoint_url=moto_url, region_name=REGION)
        s3 = session.client("s3", endpoint_url=moto_url, region_name=REGION)
        found = sqs.list_queues(QueueNamePrefix=BACKING_PREFIX).get("QueueUrls", [])
        fifo = [u for u in found if u.endswith(".fifo")]
        standard = [u for u in found if not u.endswith(".fifo")]
        if len(fifo) != 1 or len(standard) != 1:
            raise RuntimeError(f"expected one standard and one FIFO backing queue, found {found}")
        return cls(sqs, s3, {STANDARD: standard[0], FIFO: fifo[0]})

    def counts(self) -> dict[str, dict[str, int]]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        out = {}
        for kind, url in self.urls.items():
            attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
            out[kind] = {name: int(attrs["Attributes"].get(name, 0)) for name in names}
        return out

    def quarantined(self) -> list[str]:
        keys: list[str] = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=PAYLOAD_BUCKET, Prefix=QUARANTINE_PREFIX)
        for page in pages:
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def reason(self, key: str) -> str:
        """Why sealq quarantined a message (the record's ``reason``)."""
        try:
            data = self.s3.get_object(Bucket=PAYLOAD_BUCKET, Key=key)["Body"].read()
            return str(json.loads(data).get("reason", "?"))
        except (ClientError, ValueError) as err:
            return f"record unreadable ({type(err).__name__})"

    def put(self, kind: str, body: str) -> str:
        kwargs: dict[str, Any] = {"QueueUrl": self.urls[kind], "MessageBody": body}
        if kind == FIFO:
            kwargs["MessageGroupId"] = "g0"
            kwargs["MessageDeduplicationId"] = secrets.token_hex(16)
        return str(self.sqs.send_message(**kwargs)["MessageId"])


@dataclass
class Samples:
    """Stored (sealed) bodies copied from the backing queues while the soak runs."""

    inline: dict[str, bytes] = field(default_factory=dict)  # kind -> an ESDK message
    s3: bytes | None = None  # an ESDK message that was stored in S3 (standard queue)

    def complete(self, need_s3: bool) -> bool:
        return len(self.inline) == 2 and (self.s3 is not None or not need_s3)


def _sample(backing: Backing, samples: Samples, need_s3: bool, give_up: threading.Event) -> None:
    """Peek (VisibilityTimeout 0: nothing is hidden from consumers) until a copy of each is held.

    Sampling starts with the run, so copies are at hand when the injection is due.
    """
    while not give_up.is_set() and not samples.complete(need_s3):
        for kind, url in backing.urls.items():
            out = backing.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              VisibilityTimeout=0, WaitTimeSeconds=0)
            for message in out.get("Messages", []):
                body = message["Body"]
                if body.startswith("{"):
                    if kind != STANDARD or samples.s3 is not None:
                        continue
                    ref = json.loads(body)["sealq-s3"]
                    try:
                        samples.s3 = backing.s3.get_object(
                            Bucket=ref["bucket"], Key=ref["key"])["Body"].read()
                    except ClientError:
                        continue  # deleted meanwhile: take the next one
                elif kind not in samples.inline:
                    samples.inline[kind] = base64.b64decode(body)
        time.sleep(0.05)


def _plan_injections(work: Workload) -> list[tuple[str, str]]:
    """(kind, queue) for every injection asked: alternating between the two queues."""
    tampered = [("tampered-ciphertext", STANDARD), ("tampered-ciphertext", FIFO),
                ("tampered-s3", STANDARD)]
    refused = [("refused-arn", STANDARD), ("refused-edk", STANDARD),
               ("refused-arn", FIFO), ("refused-edk", FIFO)]
    return ([tampered[i % len(tampered)] for i in range(work.tampered)]
            + [refused[i % len(refused)] for i in range(work.refused)])


def _inject(backing: Backing, work: Workload, record: Record, third_sent: threading.Event,
            stop: threading.Event) -> None:
    wanted = _plan_injections(work)
    samples = Samples()
    give_up = threading.Event()

    def deadline() -> None:  # sampling may go on for a while after the injection was due
        third_sent.wait()
        stop.wait(SAMPLE_GRACE)
        give_up.set()

    threading.Thread(target=deadline, daemon=True).start()
    _sample(backing, samples, any(kind == "tampered-s3" for kind, _ in wanted), give_up)
    third_sent.wait()
    with record.lock:
        record.sent_at_injection = len(record.sent)
    for kind, where in wanted:
        sealed = samples.inline.get(where)
        if kind == "tampered-s3":
            if samples.s3 is None:
                record.injection_notes.append("tampered-s3: no S3 payload was seen to copy")
                continue
            key = "payloads/" + secrets.token_hex(20)
            backing.s3.put_object(Bucket=PAYLOAD_BUCKET, Key=key,
                                  Body=tamper_ciphertext(samples.s3))
            body = json.dumps({"sealq-s3": {"bucket": PAYLOAD_BUCKET, "key": key}},
                              separators=(",", ":"))
        elif sealed is None:
            record.injection_notes.append(f"{kind} ({where}): no stored message was seen to copy")
            continue
        else:
            altered = {"tampered-ciphertext": tamper_ciphertext, "refused-arn": refuse_arn,
                       "refused-edk": refuse_edk}[kind](sealed)
            body = base64.b64encode(altered).decode("ascii")
        message_id = backing.put(where, body)
        with record.lock:
            record.injected.append(Injected(kind, where, message_id))


# -- the run ------------------------------------------------------------------------------


@dataclass
class Result:
    work: Workload
    record: Record
    elapsed: float
    quarantine_keys: list[str]
    quarantine_reasons: dict[str, str]  # message id -> reason, for the injected ones
    backing_counts: dict[str, dict[str, int]]
    server_lines: list[str]
    server_5xx_lines: int
    sealq_url: str = ""

    # figures ---------------------------------------------------------------------------
    @property
    def planned(self) -> int:
        return self.work.messages

    @property
    def sent(self) -> int:
        return len(self.record.sent)

    @property
    def received_unique(self) -> int:
        return len(set(self.record.deliveries) & self.record.sent)

    @property
    def lost(self) -> list[str]:
        return sorted(self.record.sent - set(self.record.deliveries))

    @property
    def corrupt(self) -> int:
        return len(self.record.corrupt) + len(self.injected_delivered)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.record.deliveries.values())

    @property
    def received_send_failed(self) -> int:
        return len(set(self.record.deliveries) & self.record.send_failed)

    @property
    def quarantined_ids(self) -> set[str]:
        return {key.rsplit("/", 1)[1] for key in self.quarantine_keys}

    @property
    def injected_delivered(self) -> list[Injected]:
        return [i for i in self.record.injected if i.message_id in self.record.delivered_ids]

    @property
    def tampered(self) -> list[Injected]:
        return [i for i in self.record.injected if i.tampered]

    @property
    def refused(self) -> list[Injected]:
        return [i for i in self.record.injected if not i.tampered]

    @property
    def remaining(self) -> int:
        return sum(sum(c.values()) for c in self.backing_counts.values())

    @property
    def http_5xx(self) -> int:
        return self.record.http_5xx

    def failures(self) -> list[str]:
        """Why the soak fails; empty when it passes."""
        out = []
        if self.lost:
            out.append(f"{len(self.lost)} healthy messages lost")
        if self.corrupt:
            out.append(f"{self.corrupt} corrupt deliveries")
        if self.http_5xx or self.server_5xx_lines:
            out.append(f"HTTP 5xx: {self.http_5xx} seen by clients, "
                       f"{self.server_5xx_lines} in the server's access log")
        if len(self.record.injected) < self.work.tampered + self.work.refused:
            out.append(f"injected {len(self.record.injected)} of "
                       f"{self.work.tampered + self.work.refused} asked")
        missing = [i for i in self.tampered if i.message_id not in self.quarantined_ids]
        if missing:
            out.append(f"{len(missing)} tampered messages not quarantined")
        wrongly = [i for i in self.refused if i.message_id in self.quarantined_ids]
        if wrongly:
            out.append(f"{len(wrongly)} KMS-refused messages quarantined instead of kept")
        if self.remaining != len(self.refused):
            out.append(f"{self.remaining} messages left in the backing queues, "
                       f"expected the {len(self.refused)} KMS-refused ones")
        return out


def _outcome(result: Result, item: Injected) -> str:
    if item.message_id in result.record.delivered_ids:
        return "DELIVERED"
    if item.message_id in result.quarantined_ids:
        return f"quarantined: {result.quarantine_reasons.get(item.message_id, '?')}"
    codes = sorted({m.group(1) for line in result.server_lines if item.message_id in line
                    for m in [re.search(r"refused \((\w+)\)", line)] if m})
    return "kept, refused: " + "/".join(codes) if codes else "kept (no log line)"


def format_report(result: Result) -> str:
    work, rec = result.work, result.record
    lines = [
        f"sealq soak over HTTP ({result.sealq_url}, external moto): {work.producers} producers, "
        f"{work.consumers} consumers, VisibilityTimeout {work.visibility} s, "
        f"WaitTimeSeconds {work.wait_seconds}, backlog at most {work.max_backlog}",
        f"  planned          {result.planned:>8}   (standard "
        f"{sum(1 for s in _specs(work).values() if s.kind == STANDARD)}, FIFO "
        f"{sum(1 for s in _specs(work).values() if s.kind == FIFO)}; "
        f"{_size_mix(work)})",
        f"  sent             {result.sent:>8}   (send failed: {len(rec.send_failed)}, "
        f"of those received anyway: {result.received_send_failed})",
        f"  received unique  {result.received_unique:>8}",
        f"  lost             {len(result.lost):>8}" + (
            f"   e.g. {', '.join(result.lost[:5])}" if result.lost else ""),
        f"  corrupt          {result.corrupt:>8}",
        f"  duplicates       {result.duplicates:>8}   (deliveries beyond the first, at-least-once)",
        f"  injected         {len(rec.injected):>8}   (tampered {len(result.tampered)}, "
        f"KMS-refused {len(result.refused)}; once {rec.sent_at_injection} messages were sent)",
        f"  quarantined      {len(result.quarantine_keys):>8}   (objects under quarantine/)",
        f"  left in backing  {result.remaining:>8}   " + "; ".join(
            f"{kind}: visible {c['ApproximateNumberOfMessages']}, in flight "
            f"{c['ApproximateNumberOfMessagesNotVisible']}, delayed "
            f"{c['ApproximateNumberOfMessagesDelayed']}"
            for kind, c in result.backing_counts.items()),
        f"  HTTP 5xx         {result.http_5xx:>8}   (client attempts; server access log: "
        f"{result.server_5xx_lines})",
    ]
    for note in rec.injection_notes:
        lines.append(f"  not injected: {note}")
    if rec.injected:
        lines.append("  injected messages:")
        for item in rec.injected:
            lines.append(f"    {item.kind:<20} {item.queue:<8} {item.message_id}  "
                         f"{_outcome(result, item)}")
    for text in rec.corrupt[:_SHOWN]:
        lines.append(f"  CORRUPT {text}")
    for item in result.injected_delivered:
        lines.append(f"  CORRUPT injected {item.kind} {item.message_id} was delivered")
    if rec.responses:
        lines.append("  HTTP error responses (every attempt): " + ", ".join(
            f"{name} x{n}" for name, n in sorted(rec.responses.items())))
    if rec.errors:
        lines.append("  failed calls (after retries): " + ", ".join(
            f"{name} x{n}" for name, n in sorted(rec.errors.items())))
    lines.append(f"  {'latency (ms)':<28} {'n':>6} {'p50':>8} {'p99':>8}")
    timed = dict(sorted(rec.latencies.items()))
    timed["delivery (send start -> first receipt)"] = rec.delivery_latency
    for name, samples in timed.items():
        if samples:
            lines.append(f"  {name:<28} {len(samples):>6} {percentile(samples, 0.5) * 1000:>8.1f} "
                         f"{percentile(samples, 0.99) * 1000:>8.1f}")
    send_phase = max(rec.last_send - rec.first_send, 1e-9)
    flow = max(rec.last_first_delivery - rec.first_send, 1e-9)
    lines.append(f"  throughput: sent {result.sent / send_phase:.1f} msg/s over "
                 f"{send_phase:.1f} s; received {result.received_unique / flow:.1f} msg/s "
                 f"over {flow:.1f} s")
    lines.append(f"  elapsed {result.elapsed:.1f} s (servers started to report)")
    failures = result.failures()
    lines.append("  RESULT: " + ("PASS" if not failures else "FAIL: " + "; ".join(failures)))
    return "\n".join(lines)


def _specs(work: Workload) -> dict[str, Spec]:
    return {spec.id: spec for send in plan(work) for spec in send}


def _size_mix(work: Workload) -> str:
    specs = _specs(work).values()
    large = sum(1 for s in specs if s.size >= LARGE[0])
    medium = sum(1 for s in specs if s.size == MEDIUM)
    sends = plan(work)
    batches = sum(1 for s in sends if len(s) > 1)
    return (f"{len(specs) - large - medium} of 100 B-4 KiB, {medium} of 64 KiB, {large} over "
            f"300 KiB; {len(sends) - batches} SendMessage, {batches} SendMessageBatch")


def _drained(record: Record, backing: Backing, deadline: float,
             injector: threading.Thread) -> Iterator[None]:
    """Yields until every healthy message arrived, every tampered one is in the quarantine
    and the backing queues hold only the KMS-refused ones, or until ``deadline``."""
    while time.monotonic() < deadline:
        with record.lock:
            missing = len(record.sent - set(record.deliveries))
            tampered = {i.message_id for i in record.injected if i.tampered}
            refused = sum(1 for i in record.injected if not i.tampered)
        if not missing and not injector.is_alive():
            quarantined = {k.rsplit("/", 1)[1] for k in backing.quarantined()}
            left = sum(sum(c.values()) for c in backing.counts().values())
            if tampered <= quarantined and left == refused:
                return
        yield


def run(work: Workload, server_log: IO[str], app_log: IO[str]) -> Result:
    """Start both servers, soak, stop them."""
    record = Record()
    session = _session()
    sends = plan(work)
    specs = {spec.id: spec for send in sends for spec in send}
    began = time.monotonic()
    with bench_http.servers(server_log, app_log) as (sealq_url, moto_url, credentials):
        backing_session, session = session, bench_http.sealq_session(credentials)
        admin = _sqs(session, sealq_url, record, work)
        attrs = {"VisibilityTimeout": str(work.visibility)}
        urls = {
            STANDARD: admin.create_queue(QueueName="soak-standard", Attributes=attrs)["QueueUrl"],
            FIFO: admin.create_queue(QueueName="soak.fifo", Attributes={
                **attrs, "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"],
        }
        backing = Backing.find(backing_session, moto_url)
        producers = [_sqs(session, sealq_url, record, work) for _ in range(work.producers)]
        consumers = [_sqs(session, sealq_url, record, work) for _ in range(work.consumers)]
        work_queue: queue.Queue[list[Spec]] = queue.Queue()
        for send in sends:
            work_queue.put(send)
        stop, third_sent = threading.Event(), threading.Event()
        fifo_consumers = max(1, round(work.consumers / work.fifo_every))
        threads = [
            threading.Thread(target=_consume, name=f"consumer-{i}", daemon=True, args=(
                sqs, urls[FIFO if i < fifo_consumers else STANDARD],
                FIFO if i < fifo_consumers else STANDARD, specs, record, work, stop))
            for i, sqs in enumerate(consumers)
        ]
        injector = threading.Thread(target=_inject, name="injector", daemon=True,
                                    args=(backing, work, record, third_sent, stop))
        threads.append(injector)
        for thread in threads:
            thread.start()
        senders = [
            threading.Thread(target=_produce, name=f"producer-{i}", daemon=True,
                             args=(sqs, urls, work_queue, record, work, third_sent))
            for i, sqs in enumerate(producers)
        ]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        third_sent.set()  # even if too few sends succeeded: the injector must not hang
        for _ in _drained(record, backing, time.monotonic() + work.drain_timeout, injector):
            time.sleep(0.25)
        stop.set()
        for thread in threads:
            thread.join()
        quarantine_keys = backing.quarantined()
        ids = {i.message_id for i in record.injected}
        reasons = {key.rsplit("/", 1)[1]: backing.reason(key) for key in quarantine_keys
                   if key.rsplit("/", 1)[1] in ids}
        counts = backing.counts()
    elapsed = time.monotonic() - began
    server_log.seek(0)
    access = server_log.read()
    app_log.seek(0)
    server_lines = [line for line in app_log.read().splitlines() if any(i in line for i in ids)]
    server_5xx = len(re.findall(r'" 5\d\d ', access))
    return Result(work, record, elapsed, quarantine_keys, reasons, counts, server_lines,
                  server_5xx, sealq_url)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="200 messages, 2 producers, 2 consumers, 1 tampered, 2 refused")
    parser.add_argument("--messages", type=int, help="messages to send (default 6000)")
    parser.add_argument("--producers", type=int, help="producer threads (default 10)")
    parser.add_argument("--consumers", type=int, help="consumer threads (default 10)")
    parser.add_argument("--max-backlog", type=int,
                        help="producers wait while this many sent messages are unreceived "
                             "(default 400)")
    parser.add_argument("--server-log", metavar="PATH",
                        help="keep the devserver's stderr (access log) in PATH and its "
                             "stdout (the app's log) in PATH.app")
    args = parser.parse_args(argv)
    work = Workload.quick() if args.quick else Workload()
    overrides = {k: v for k in ("messages", "producers", "consumers", "max_backlog")
                 if (v := getattr(args, k)) is not None}
    if any(v < 1 for v in overrides.values()) or overrides.get("consumers", 2) < 2:
        parser.error("--messages, --producers, --max-backlog must be >= 1, "
                     "--consumers >= 2 (one per queue)")
    work = Workload(**{**work.__dict__, **overrides})
    if args.server_log:
        server_log: IO[str] = open(args.server_log, "w+")  # noqa: SIM115 - closed below
        app_log: IO[str] = open(args.server_log + ".app", "w+")  # noqa: SIM115
    else:
        server_log, app_log = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    with server_log, app_log:
        result = run(work, server_log, app_log)
    print(format_report(result), flush=True)
    if result.server_lines:
        print("server log lines about the injected messages:")
        for line in result.server_lines[:40]:
            print(f"  {line}")
    return 1 if result.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
