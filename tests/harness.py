"""A fleet of simulated containers on one moto backend, driven by real boto3 clients.

Each handler container is a full ``frontend`` object graph (its own tier-1 cache,
queue cache and secrets); each key-service container is a ``KeyServiceCore``
with its own boto3 KMS client. KMS traffic is counted at the botocore layer of
those clients, never by sealq's own counters. An ``sqs`` client for a handler
is an ordinary boto3 client whose HTTP send is answered by that handler, so
botocore serializes requests and parses responses (and errors) exactly as it
would over the network.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config

from chalicelib import container, frontend, settings
from chalicelib.aws import Clients
from chalicelib.clock import Clock
from chalicelib.keyservice import KeyServiceClient, KeyServiceCore
from chalicelib.keyservice.transport import InProcessTransport

ENDPOINT = "http://sealq.test"
REGION = "us-east-1"
# One session for every client the tests make: a session loads each service model
# once, so clients come cheap (STYLE: share one boto3 session).
SESSION = boto3.session.Session()


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _short_sleep(_seconds: float) -> None:
    """Losers of the key-generation lease poll quickly in tests (moto answers at once)."""
    time.sleep(0.01)


def serialized_dynamodb() -> Any:
    """A DynamoDB client whose requests moto serves one at a time.

    Real DynamoDB applies a conditional write atomically; moto checks the condition
    and writes in separate steps without a lock, so threads could both "win".
    """
    ddb = boto3.client("dynamodb", region_name=REGION)
    lock = threading.Lock()

    def acquire(**_: Any) -> None:
        lock.acquire()

    def release(**_: Any) -> None:
        lock.release()

    ddb.meta.events.register("before-call.dynamodb", acquire)
    ddb.meta.events.register("after-call.dynamodb", release)
    ddb.meta.events.register("after-call-error.dynamodb", release)
    return ddb


class KmsCounter:
    """Counts KMS operations per key-service container, thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: collections.Counter[tuple[int, str]] = collections.Counter()

    def hook(self, container: int) -> Any:
        def count(model: Any, **_: Any) -> None:
            with self._lock:
                self.calls[(container, model.name)] += 1

        return count

    def total(self, operation: str) -> int:
        with self._lock:
            return sum(n for (_, op), n in self.calls.items() if op == operation)

    def by_container(self, operation: str) -> dict[int, int]:
        with self._lock:
            return {c: n for (c, op), n in self.calls.items() if op == operation}


class Fleet:
    def __init__(self, clock: Clock, key_service_containers: int = 1) -> None:
        self.clock = clock
        self.kms = KmsCounter()
        conf = settings.get()
        self.cores = []
        self.kms_clients: list[Any] = []
        dynamodb = serialized_dynamodb()  # shared: one lock for every key-service container
        self.key_records = dynamodb  # the key-record client the cores share (fault injection)
        for index in range(key_service_containers):
            kms = boto3.client("kms", region_name=REGION)
            kms.meta.events.register("before-call.kms.*", self.kms.hook(index))
            self.kms_clients.append(kms)
            self.cores.append(
                KeyServiceCore(
                    kms=kms,
                    dynamodb=dynamodb,
                    table=conf.keys_table,
                    default_kms_key=conf.default_kms_key,
                    clock=clock,
                    cache_size=conf.key_service_cache_size,
                    decrypt_ttl=conf.decrypt_key_ttl,
                    sleep=_short_sleep,
                )
            )
        self._next_core = itertools.cycle(range(key_service_containers))

    def handler(self, core: int | None = None) -> frontend.Frontend:
        """A new, cold handler container calling key-service container ``core``."""
        return self.container(core)[0]

    def container(self, core: int | None = None) -> tuple[frontend.Frontend, Clients]:
        """A new, cold handler container and its boto3 clients (for fault injection)."""
        index = next(self._next_core) if core is None else core
        client = KeyServiceClient(InProcessTransport(self.cores[index]))
        conf = settings.get()
        clients = Clients(SESSION, conf.region, conf.aws_endpoint)
        handler = container.build_frontend(
            conf,
            ports=container.aws_ports(conf, clients),
            key_service=client,
            clock=self.clock,
            local_clock=self.clock,
        )
        return handler, clients

    def sqs(self, handler: frontend.Frontend | None = None) -> Any:
        """A boto3 SQS client whose requests are served by ``handler``."""
        return sqs_client(handler or self.handler())


def sqs_client(
    handler: frontend.Frontend, config: Config | None = None, *, retries: int | None = None
) -> Any:
    """A boto3 SQS client answered by ``handler``; ``config`` or ``retries`` (attempts)
    e.g. to see an error rather than the SDK's retry of it."""
    if retries:
        config = Config(retries={"total_max_attempts": retries})
    client = SESSION.client("sqs", region_name=REGION, endpoint_url=ENDPOINT, config=config)

    def serve(request: Any, **_: Any) -> AWSResponse:
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {
            k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
        }
        resp = handler.handle(headers, body, ENDPOINT)
        return AWSResponse(
            request.url, resp.status, HeadersDict(resp.headers), _Raw(resp.body.encode("utf-8"))
        )

    client.meta.events.register("before-send.sqs.*", serve)
    return client


def kms_fault(code: str, message: str = "injected fault") -> Any:
    """A ``before-call.kms.*`` hook that makes the call fail as AWS would (moto cannot)."""

    def fail(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://kms.test/", 400, HeadersDict({}), _Raw(b"")), parsed

    return fail
