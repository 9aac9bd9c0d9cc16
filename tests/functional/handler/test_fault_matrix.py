"""The fault-injection matrix: every backend call of the handler path, failed five ways.

Each backend call (SQS, S3, DynamoDB, the key-service invoke, KMS, the key records)
fails from botocore's ``before-call`` hook the way AWS fails it: throttled, a 5xx,
a read timeout, gone, access denied. The request comes from a real boto3 SQS client
that makes one attempt (the answer seen is the handler's own, not a retry's) and
reaches a handler container whose key service is invoked over Lambda. Every case
asserts SQS's error code and status, that the store did not change (registry,
backing queues, bucket, key records), that no sealed payload stayed in S3, and that
no log line quotes AWS's message text.

A ``before-call`` hook runs once per API call, before botocore's retry loop, so a
fault injected there fails every attempt the client's budget would allow. One moto
stack serves the module; each case has its own queue and cold containers.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.response import StreamingBody
from moto import mock_aws

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import FakeClock
from chalicelib.handler import container
from chalicelib.keyservice import KeyServiceClient, KeyServiceCore
from chalicelib.keyservice.transport import LambdaTransport
from tests.harness import REGION, SESSION, TEST_ENV, Fleet, sqs_client

# AWS's message text in every injected fault: it must reach no client and no log line.
MARK = "SECRET-TEXT"
FUNCTION = "sealq-key-service"
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})
BIG = "b" * 300_000  # above the 256 KiB inline limit: its sealed body goes to S3
SMALL = "small"

FAULTS = ("throttled", "5xx", "timeout", "gone", "denied")
# What each service answers, per fault: (error code, HTTP status). "timeout" is a
# botocore ReadTimeoutError instead.
AWS_ERRORS: dict[str, dict[str, tuple[str, int]]] = {
    "sqs": {
        "throttled": ("RequestThrottled", 400),
        "5xx": ("InternalError", 500),
        "gone": ("AWS.SimpleQueueService.NonExistentQueue", 400),
        "denied": ("AccessDenied", 403),
    },
    "s3": {
        "throttled": ("SlowDown", 503),
        "5xx": ("InternalError", 500),
        "gone": ("NoSuchKey", 404),
        "denied": ("AccessDenied", 403),
    },
    "dynamodb": {
        "throttled": ("ProvisionedThroughputExceededException", 400),
        "5xx": ("InternalServerError", 500),
        "gone": ("ResourceNotFoundException", 400),
        "denied": ("AccessDeniedException", 400),
    },
    "kms": {
        "throttled": ("ThrottlingException", 400),
        "5xx": ("KMSInternalException", 500),
        "gone": ("NotFoundException", 400),
        "denied": ("AccessDeniedException", 400),
    },
    "lambda": {
        "throttled": ("TooManyRequestsException", 429),
        "5xx": ("ServiceException", 500),
        "gone": ("ResourceNotFoundException", 404),
        "denied": ("AccessDeniedException", 403),
    },
}


@dataclass(frozen=True)
class Outcome:
    """What the client sees: HTTP status and botocore's error code ("" for success)."""

    status: int
    code: str = ""


OK = Outcome(200)
RETRY = Outcome(403, "RequestThrottled")
BROKEN = Outcome(500, "InternalFailure")  # the deployment is broken: logged with AWS's code
NO_QUEUE = Outcome(400, "AWS.SimpleQueueService.NonExistentQueue")
KMS_THROTTLED = Outcome(400, "KMS.ThrottlingException")
KMS_NOT_FOUND = Outcome(400, "KMS.NotFoundException")
KMS_DENIED = Outcome(400, "KMS.AccessDeniedException")


def outcomes(gone: Outcome = BROKEN, **override: Outcome) -> dict[str, Outcome]:
    """Transient faults are retryable, a denied role is the deployment's bug."""
    table = {"throttled": RETRY, "5xx": RETRY, "timeout": RETRY, "gone": gone, "denied": BROKEN}
    table.update(override)
    return table


KMS_OUTCOMES = outcomes(
    gone=KMS_NOT_FOUND, throttled=KMS_THROTTLED, denied=KMS_DENIED
)


# -- the module's one moto stack, and the store as a value ----------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("SEALQ_") or name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
                patch.delenv(name)
        for name, value in TEST_ENV.items():
            patch.setenv(name, value)
        with mock_aws():
            from tests.harness import provision_stack

            container.reset()
            provision_stack()
            yield
            container.reset()
            Store._clients = None


_names = itertools.count()


class Store:
    """Reads everything sealq keeps, with clients of its own (never the faulted ones)."""

    _clients: tuple[Any, Any, Any] | None = None  # one set for the module: clients cost

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        if Store._clients is None:
            Store._clients = (boto3.client("dynamodb", region_name=REGION),
                              boto3.client("sqs", region_name=REGION),
                              boto3.client("s3", region_name=REGION))
        self._ddb, self._sqs, self._s3 = Store._clients

    def _mine(self, item: dict[str, Any]) -> bool:
        name = str(item["name"]["S"])
        return name == self.prefix or name.startswith(self.prefix + "-")

    def snapshot(self) -> dict[str, Any]:
        """This case's registry items and backing queues, every backing queue's URL and
        every object of the bucket.

        A registry item's ``version`` is left out: it is the optimistic-lock counter,
        which a compensating write must move on (never back) like any other write.
        """
        conf = settings.get()
        items = [i for i in self._ddb.scan(TableName=conf.queues_table)["Items"]
                 if self._mine(i)]
        for item in items:
            item.pop("version", None)
        urls = self._sqs.list_queues(QueueNamePrefix="sealq-").get("QueueUrls", [])
        backing = {}
        for item in items:
            url = item["backing_url"]["S"]
            attributes = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            backing[url] = attributes["Attributes"]
            backing[url].pop("LastModifiedTimestamp", None)
        objects = self._s3.list_objects_v2(Bucket=conf.payload_bucket).get("Contents", [])
        return {
            "registry": sorted(json.dumps(i, sort_keys=True) for i in items),
            "backing_urls": sorted(urls),
            "backing": backing,
            "objects": sorted(o["Key"] for o in objects),
        }

    def unfinished_key_records(self) -> list[str]:
        """Key records holding a lease or no key: what a failed generation leaves behind.

        (A complete new record is no change a client sees: the key service's cache.)
        """
        items = self._ddb.scan(TableName=settings.get().keys_table)["Items"]
        return [i["id"]["S"] for i in items if "lease_owner" in i or "encrypted" not in i]


# -- a handler container whose backend calls fail on demand ----------------------------


def _forward_to(core: KeyServiceCore) -> Callable[..., Any]:
    """Answer the handler's Lambda Invoke with a real in-process key-service core."""

    def invoke(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        answer = json.dumps(core.handle(json.loads(params["body"]))).encode()
        parsed = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(answer), len(answer))}
        return AWSResponse("https://lambda.test/", 200, HeadersDict({}), None), parsed

    return invoke


def aws_fault(client: Any, operation: str, fault: str, gone_code: str | None) -> Exception:
    """The exception botocore raises when AWS answers ``operation`` with ``fault``."""
    if fault == "timeout":
        return ReadTimeoutError(endpoint_url=f"https://{MARK}.invalid/")
    service = client.meta.service_model.service_id.hyphenize()
    code, status = AWS_ERRORS[service][fault]
    if fault == "gone" and gone_code:
        code = gone_code
    parsed = {"Error": {"Code": code, "Message": MARK},
              "ResponseMetadata": {"HTTPStatusCode": status}}
    error: Exception = client.exceptions.from_code(code)(parsed, operation)
    return error


@dataclass(frozen=True)
class Row:
    """One backend call: the client role that makes it, the operation, how to drive it."""

    name: str
    role: str  # a handler Clients role, or "kms" / "key_records" of the key service
    operation: str
    scenario: Callable[[Case], None]
    expected: dict[str, Outcome]
    gone_code: str | None = None  # when "gone" is not the service's usual code here


@dataclass
class Case:
    """One cell of the matrix: a fresh queue name, cold containers, one fault."""

    row: Row
    fault: str
    clock: FakeClock
    caplog: pytest.LogCaptureFixture
    name: str = field(default_factory=lambda: f"c{next(_names)}")
    hits: int = 0

    def __post_init__(self) -> None:
        conf = settings.get()
        self.store = Store(self.name)
        self.fleet = Fleet(self.clock)  # the faulted container's key service
        self.clients = Clients(SESSION, conf.region, conf.aws_endpoint)
        invoke = self.clients.get("key_service")
        invoke.meta.events.register("before-call.lambda.Invoke", _forward_to(self.fleet.cores[0]))
        handler = container.build_frontend(
            conf,
            ports=container.aws_ports(conf, self.clients),
            key_service=KeyServiceClient(LambdaTransport(FUNCTION, invoke)),
            clock=self.clock,
            local_clock=self.clock,
            secrets=self.fleet.secrets,
        )
        self.sqs = sqs_client(handler, ONE_ATTEMPT)
        # Setup and checks go through another container with its own key service, so
        # the faulted one starts cold (its key service has to call KMS to open).
        self.healthy = sqs_client(Fleet(self.clock).handler())

    @property
    def injected_code(self) -> str:
        error = aws_fault(self.client(), self.row.operation, self.fault, self.row.gone_code)
        if isinstance(error, ClientError):
            return str(error.response["Error"]["Code"])
        return type(error).__name__

    @property
    def expected(self) -> Outcome:
        return self.row.expected[self.fault]

    def client(self, role: str | None = None) -> Any:
        role = role or self.row.role
        if role == "kms":
            return self.fleet.kms_clients[0]
        if role == "key_records":
            return self.fleet.key_records
        return self.clients.get(role)

    def inject(self, role: str | None = None, operation: str | None = None) -> None:
        """From now on, every call of the row's operation (or of ``operation`` by the
        client of ``role``) fails with the case's fault.

        Registered first, so it also pre-empts the Lambda forwarder and the key
        records' lock (a hook that raises runs no later hook of the call).
        """
        client = self.client(role)
        service = client.meta.service_model.service_id.hyphenize()
        operation = operation or self.row.operation

        def fail(**_: Any) -> None:
            self.hits += 1
            raise aws_fault(client, operation, self.fault, self.row.gone_code)

        client.meta.events.register_first(f"before-call.{service}.{operation}", fail)
        self.clock.advance(10)  # a write now would show in a timestamp

    def queue(self, **attributes: str) -> str:
        return str(self.healthy.create_queue(QueueName=self.name, Attributes=attributes)[
            "QueueUrl"])

    def in_flight(self, url: str, body: str = BIG) -> str:
        """Send ``body`` and receive it through the healthy container; its receipt handle."""
        self.healthy.send_message(QueueUrl=url, MessageBody=body)
        got = self.healthy.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        return str(got[0]["ReceiptHandle"])

    def answer(self, call: Callable[..., Any], **kwargs: Any) -> tuple[Outcome, dict[str, Any]]:
        """Make the faulted request; what the client saw and the response."""
        try:
            out: dict[str, Any] = call(**kwargs)
        except ClientError as err:
            assert MARK not in json.dumps(err.response, default=str)
            status = err.response["ResponseMetadata"]["HTTPStatusCode"]
            return Outcome(status, str(err.response["Error"]["Code"])), dict(err.response)
        return OK, out

    def refused(self, call: Callable[..., Any], **kwargs: Any) -> None:
        """Make the faulted request: the case's outcome, and the store as it was."""
        before = self.store.snapshot()
        self.inject()
        got, _ = self.answer(call, **kwargs)
        assert got == self.expected
        assert self.store.snapshot() == before

    def visible_bodies(self, url: str) -> list[str]:
        """What a healthy consumer receives from ``url`` right now (left visible)."""
        got = self.healthy.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           VisibilityTimeout=0)
        return sorted(m["Body"] for m in got.get("Messages", []))


# -- scenarios: how a row's call is reached, and what must hold afterwards ---------------


def sending(case: Case) -> None:
    """SendMessage of a body that goes to S3: refused, nothing stored, no object left."""
    url = case.queue()
    case.refused(case.sqs.send_message, QueueUrl=url, MessageBody=BIG)


def sending_batch(case: Case) -> None:
    """SendMessageBatch of bodies that go to S3: refused as a whole, no object left."""
    url = case.queue()
    entries = [{"Id": "a", "MessageBody": BIG}, {"Id": "b", "MessageBody": SMALL}]
    case.refused(case.sqs.send_message_batch, QueueUrl=url, Entries=entries)


KEY_REFUSED = {"KMS.NotFoundException", "KMS.AccessDeniedException"}


def receiving(case: Case) -> None:
    """ReceiveMessage of an inline and an S3 message: refused, and both are visible again
    at once; when KMS refuses their key, both stay in flight (their receive count and
    redrive apply); when only the payload is gone or refused, the other one is returned
    and the broken one is quarantined."""
    url = case.queue()
    case.healthy.send_message(QueueUrl=url, MessageBody=SMALL)
    case.healthy.send_message(QueueUrl=url, MessageBody=BIG)
    before = case.store.snapshot()
    case.inject()
    got, out = case.answer(case.sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=10)
    assert got == case.expected
    if got == OK:  # a pointer to nothing is an integrity failure, not a fault
        assert [m["Body"] for m in out.get("Messages", [])] == [SMALL]
        assert case.visible_bodies(url) == []  # neither returned twice nor handed back
        assert any(k.startswith("quarantine/") for k in case.store.snapshot()["objects"])
        return
    if got.code in KEY_REFUSED:  # the messages' own key: they stay, in flight
        assert case.visible_bodies(url) == []
        (counts,) = case.store.snapshot()["backing"].values()
        assert counts["ApproximateNumberOfMessagesNotVisible"] == "2"
        return
    assert case.store.snapshot() == before
    assert case.visible_bodies(url) == [BIG, SMALL]


def deleting(case: Case) -> None:
    """DeleteMessage of an S3 message: refused, still in flight, its payload kept."""
    url = case.queue()
    handle = case.in_flight(url)
    case.refused(case.sqs.delete_message, QueueUrl=url, ReceiptHandle=handle)


def deleting_the_payload(case: Case) -> None:
    """The payload is deleted after the message: the delete stands, the object waits for
    the bucket's lifecycle rule (sealed), and the operator's log says so."""
    url = case.queue()
    handle = case.in_flight(url)
    before = case.store.snapshot()
    case.inject()
    got, _ = case.answer(case.sqs.delete_message, QueueUrl=url, ReceiptHandle=handle)
    assert got == case.expected
    after = case.store.snapshot()
    assert after["objects"] == before["objects"]
    (counts,) = after["backing"].values()
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert "payload of a deleted message left for expiry" in case.caplog.text


def changing_visibility(case: Case) -> None:
    url = case.queue()
    handle = case.in_flight(url, SMALL)
    case.refused(case.sqs.change_message_visibility, QueueUrl=url, ReceiptHandle=handle,
                 VisibilityTimeout=0)


def purging(case: Case) -> None:
    url = case.queue()
    case.healthy.send_message(QueueUrl=url, MessageBody=SMALL)
    case.refused(case.sqs.purge_queue, QueueUrl=url)


def setting_attributes(case: Case) -> None:
    """SetQueueAttributes of a mirrored attribute: neither registry nor backing changes."""
    url = case.queue()
    case.refused(case.sqs.set_queue_attributes, QueueUrl=url,
                 Attributes={"VisibilityTimeout": "45"})
    got = case.healthy.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert got["Attributes"]["VisibilityTimeout"] == "30"


def reading_attributes(case: Case) -> None:
    url = case.queue()
    case.refused(case.sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["All"])


def creating(case: Case) -> None:
    """CreateQueue: no registry item and no backing queue left behind."""
    case.refused(case.sqs.create_queue, QueueName=case.name + "-new")
    assert case.healthy.list_queues(QueueNamePrefix=case.name).get("QueueUrls", []) == []


def changing_the_registry(case: Case) -> None:
    """SetQueueAttributes and TagQueue: nothing changes, backing queue included."""
    url = case.queue()
    case.refused(case.sqs.set_queue_attributes, QueueUrl=url,
                 Attributes={"VisibilityTimeout": "45"})
    case.refused(case.sqs.tag_queue, QueueUrl=url, Tags={"team": "a"})


def deleting_the_queue(case: Case) -> None:
    """DeleteQueue whose registry delete fails: the queue is still there, and works."""
    url = case.queue()
    case.refused(case.sqs.delete_queue, QueueUrl=url)
    case.healthy.send_message(QueueUrl=url, MessageBody=SMALL)


def listing(case: Case) -> None:
    case.queue()
    case.refused(case.sqs.list_queues, QueueNamePrefix=case.name)


ROWS = [
    Row("sqs-send", "messages", "SendMessage", sending, outcomes(gone=NO_QUEUE)),
    Row("sqs-send-batch", "messages", "SendMessageBatch", sending_batch,
        outcomes(gone=NO_QUEUE)),
    Row("sqs-receive", "long_poll", "ReceiveMessage", receiving, outcomes(gone=NO_QUEUE)),
    Row("sqs-delete", "messages", "DeleteMessage", deleting, outcomes(gone=NO_QUEUE)),
    Row("sqs-visibility", "messages", "ChangeMessageVisibility", changing_visibility,
        outcomes(gone=NO_QUEUE)),
    Row("sqs-purge", "messages", "PurgeQueue", purging, outcomes(gone=NO_QUEUE)),
    Row("sqs-set-attributes", "messages", "SetQueueAttributes", setting_attributes,
        outcomes(gone=NO_QUEUE)),
    Row("sqs-get-attributes", "messages", "GetQueueAttributes", reading_attributes,
        outcomes(gone=NO_QUEUE)),
    Row("sqs-create-queue", "messages", "CreateQueue", creating, outcomes(gone=NO_QUEUE)),
    # CreateQueue reads the new backing queue's ARN: a failure there must not leak it.
    Row("sqs-create-queue-arn", "messages", "GetQueueAttributes", creating,
        outcomes(gone=NO_QUEUE)),
    Row("s3-put", "payloads", "PutObject", sending, outcomes(), gone_code="NoSuchBucket"),
    # S3 answers a missing key 403 to a role without s3:ListBucket: either way the
    # object is the message's fault (quarantined), never the request's.
    Row("s3-get", "payloads", "GetObject", receiving, outcomes(gone=OK, denied=OK)),
    Row("s3-delete", "payloads", "DeleteObject", deleting_the_payload,
        dict.fromkeys(FAULTS, OK), gone_code="NoSuchBucket"),
    Row("dynamodb-get", "queues", "GetItem", sending, outcomes()),
    Row("dynamodb-put", "queues", "PutItem", creating, outcomes()),
    Row("dynamodb-update", "queues", "UpdateItem", changing_the_registry, outcomes()),
    Row("dynamodb-delete", "queues", "DeleteItem", deleting_the_queue, outcomes()),
    Row("dynamodb-query", "queues", "Query", listing, outcomes()),
    Row("invoke-send", "key_service", "Invoke", sending, outcomes()),
    Row("invoke-receive", "key_service", "Invoke", receiving, outcomes()),
    Row("kms-generate", "kms", "GenerateDataKey", sending, KMS_OUTCOMES),
    Row("kms-decrypt", "kms", "Decrypt", receiving, KMS_OUTCOMES),
    Row("key-records-get", "key_records", "GetItem", sending, outcomes()),
    Row("key-records-update", "key_records", "UpdateItem", sending, outcomes()),
]


@pytest.mark.parametrize(
    ("row", "fault"),
    [(row, fault) for row in ROWS for fault in FAULTS],
    ids=[f"{row.name}-{fault}" for row in ROWS for fault in FAULTS],
)
def test_a_failing_backend_call_gives_sqs_its_error_and_changes_nothing(
    world: None, clock: FakeClock, caplog: pytest.LogCaptureFixture, row: Row, fault: str
) -> None:
    caplog.set_level(logging.INFO)
    case = Case(row, fault, clock, caplog)
    row.scenario(case)
    assert case.hits, f"{row.operation} was never called: the case tests nothing"
    assert case.store.unfinished_key_records() == []
    assert MARK not in caplog.text
    if case.expected == BROKEN:
        assert case.injected_code in caplog.text  # the operator learns what broke


def test_a_receive_whose_hand_back_is_refused_too_leaves_its_messages_for_their_timeout(
    world: None, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The one case the handler cannot make good: opening fails and the backing store
    refuses ChangeMessageVisibility(0) as well. The client still gets a retryable
    error; the messages come back when their visibility timeout ends, as after a
    consumer crash, and the log names each one."""
    caplog.set_level(logging.INFO)
    row = Row("s3-get", "payloads", "GetObject", receiving, outcomes())
    case = Case(row, "throttled", clock, caplog)
    url = case.queue()
    case.healthy.send_message(QueueUrl=url, MessageBody=SMALL)
    case.healthy.send_message(QueueUrl=url, MessageBody=BIG)
    case.inject()
    case.inject("messages", "ChangeMessageVisibility")

    got, _ = case.answer(case.sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=10)

    assert got == RETRY
    assert case.visible_bodies(url) == []
    assert caplog.text.count("could not hand back message") == 2
    assert MARK not in caplog.text
