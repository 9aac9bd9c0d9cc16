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

import base64
import collections
import itertools
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse, HeadersDict
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import SYSTEM_CLOCK, Clock
from chalicelib.handler import container, frontend
from chalicelib.keyservice import KeyServiceClient, KeyServiceCore
from chalicelib.keyservice import process as key_service_process
from chalicelib.keyservice.api import SecretService
from chalicelib.keyservice.transport import InProcessTransport
from chalicelib.observability.metrics import NO_METRICS, Metrics, Recorder
from chalicelib.protocol.json10 import HttpResponse
from chalicelib.storage.accounts import DynamoAccountStore
from chalicelib.storage.ports import AccountStore
from tools.admin.accounts import Accounts

# The repository: the folder above tests/.
ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "http://sealq.test"
REGION = "us-east-1"
# Every test stack has this one account and access key; in-process clients sign with it.
TEST_ACCOUNT = settings.DEFAULT_ACCOUNT
TEST_KEY_ID = "AKIASEALQTESTKEY0001"
TEST_SECRET = "sealqTestSecretKey/0123456789abcdefghijk"
TEST_CREDENTIALS = Credentials(TEST_KEY_ID, TEST_SECRET)
# The dummy credentials and region every test runs with (tests/conftest.py sets them).
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# One session for every client the tests make: a session loads each service model
# once, so clients come cheap (STYLE: share one boto3 session).
SESSION = boto3.session.Session()


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def install_test_key(
    store: AccountStore, secrets: SecretService, clock: Clock = SYSTEM_CLOCK
) -> None:
    """The test account and access key in ``store`` (sealed by ``secrets``), once."""
    accounts = Accounts(store, secrets, clock)
    accounts.ensure_account(TEST_ACCOUNT, "tests")
    if not accounts.key_exists(TEST_KEY_ID):
        accounts.register_access_key(TEST_ACCOUNT, TEST_KEY_ID, TEST_SECRET)


def provision_stack() -> None:
    """sealq's resources on the current AWS endpoint (moto), plus the test access key.

    The key is sealed by a key service of its own, so no test's KMS counters see it.
    """
    from tools.local import provision
    provision.ensure_resources(session=SESSION)
    conf = settings.get()
    clients = Clients(SESSION, conf.region, conf.aws_endpoint)
    install_test_key(DynamoAccountStore(clients.get("accounts"), conf.accounts_table),
                     key_service_process.client(conf, clients))


def allow_kms_key(*cmks: str, account: str = TEST_ACCOUNT, allowed: bool = True) -> None:
    """The operator's ``allow-kms-key`` (``allowed=False``: ``disallow-kms-key``) for
    ``account`` on the current stack; handlers see it within their auth cache TTL."""
    conf = settings.get()
    clients = Clients(SESSION, conf.region, conf.aws_endpoint)
    accounts = Accounts(DynamoAccountStore(clients.get("accounts"), conf.accounts_table),
                        auth_secrets(), SYSTEM_CLOCK)
    for cmk in cmks:
        accounts.set_kms_key(account, cmk, allowed)


def auth_secrets() -> KeyServiceClient:
    """A key service for opening access-key secrets apart from the counted/faulted ones:
    handlers open their key once per container and day, which is not message traffic."""
    conf = settings.get()
    return key_service_process.client(conf, Clients(SESSION, conf.region, conf.aws_endpoint))


def signed_handle(
    handler: frontend.Frontend, headers: Mapping[str, str], body: bytes,
    base_url: str = ENDPOINT, deadline: float | None = None,
) -> HttpResponse:
    """``handler.handle`` for a request signed with the test key, as a client would send it."""
    request = AWSRequest(method="POST", url=ENDPOINT + "/", data=body, headers=dict(headers))
    request.headers["Host"] = urlsplit(ENDPOINT).netloc
    SigV4Auth(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)
    signed = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    return handler.handle(signed, body, base_url, deadline, method="POST", path="/")


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
    def __init__(
        self, clock: Clock, key_service_containers: int = 1, metrics: Metrics = NO_METRICS
    ) -> None:
        self.clock = clock
        self.metrics = metrics  # every container's, handlers and key services alike
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
                    metrics=metrics,
                )
            )
        self._next_core = itertools.cycle(range(key_service_containers))
        self.secrets = auth_secrets()

    def handler(self, core: int | None = None) -> frontend.Frontend:
        """A new, cold handler container calling key-service container ``core``."""
        return self.container(core)[0]

    def container(self, core: int | None = None) -> tuple[frontend.Frontend, Clients]:
        """A new, cold handler container and its boto3 clients (for fault injection)."""
        index = next(self._next_core) if core is None else core
        client = KeyServiceClient(InProcessTransport(self.cores[index]), self.metrics)
        conf = settings.get()
        clients = Clients(SESSION, conf.region, conf.aws_endpoint)
        handler = container.build_frontend(
            conf,
            ports=container.aws_ports(conf, clients),
            key_service=client,
            clock=self.clock,
            local_clock=self.clock,
            secrets=self.secrets,
            metrics=self.metrics,
        )
        return handler, clients

    def sqs(self, handler: frontend.Frontend | None = None) -> Any:
        """A boto3 SQS client whose requests are served by ``handler``."""
        return sqs_client(handler or self.handler())


class Invocations:
    """A handler container whose metrics are flushed after every request, as each Lambda
    invocation flushes them (``container.serve_http``): EMF lines on stdout."""

    def __init__(self, handler: frontend.Frontend, recorder: Recorder) -> None:
        self._handler = handler
        self._recorder = recorder

    def handle(self, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return self._handler.handle(*args, **kwargs)
        finally:
            self._recorder.flush()


def sqs_client(
    handler: frontend.Frontend | Invocations, config: Config | None = None, *,
    retries: int | None = None,
    credentials: Credentials = TEST_CREDENTIALS,
) -> Any:
    """A boto3 SQS client answered by ``handler``, signing with ``credentials`` (the test
    key); ``config`` or ``retries`` (attempts) e.g. to see an error rather than the SDK's
    retry of it."""
    if retries:
        config = Config(retries={"total_max_attempts": retries})
    client = SESSION.client(
        "sqs", region_name=REGION, endpoint_url=ENDPOINT, config=config,
        aws_access_key_id=credentials.access_key, aws_secret_access_key=credentials.secret_key,
    )

    def serve(request: Any, **_: Any) -> AWSResponse:
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = {
            k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()
        }
        url = urlsplit(request.url)
        headers.setdefault("Host", url.netloc)  # as the HTTP layer sends it
        resp = handler.handle(headers, body, ENDPOINT, method=request.method,
                              path=url.path or "/", query=url.query)
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


def refused(call: Any, **params: Any) -> tuple[str, int]:
    """The SQS error code and HTTP status a boto3 call is refused with (it must fail)."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def forms(secret: bytes) -> list[bytes]:
    """How a secret could show in stored or logged text: raw, base64, URL-safe base64, hex."""
    return [
        secret,
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        secret.hex().encode(),
    ]
