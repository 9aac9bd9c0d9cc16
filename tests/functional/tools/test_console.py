"""The local console behind its gate, over moto: what it lists, what it shows of the
stored records, its live figures, and what it refuses. Requests are answered by the
console object itself, as the local HTTP server hands them over; the real server and a
real browser are tests/e2e/test_console.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import FakeClock
from chalicelib.handler import container
from chalicelib.observability.metrics import Recorder
from chalicelib.storage.ports import MoveTask
from tests.harness import REGION, SESSION, TEST_ACCOUNT, TEST_SECRET, allow_kms_key
from tools.admin import cli
from tools.local.console import Console, claims
from tools.local.console.gate import Gate
from tools.local.console.live import Live
from tools.local.console.stored import MotoStore, describe
from tools.local.console.views import Stores

PORT = 9324
TOKEN = "this-runs-token"
HOST = {"Host": f"127.0.0.1:{PORT}"}
COOKIE = {**HOST, "Cookie": f"sealq_console_{PORT}={TOKEN}"}


def arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{TEST_ACCOUNT}:{name}"


class Local:
    """A console over the test's moto stack, and what it answers."""

    def __init__(self, clock: FakeClock) -> None:
        conf = settings.get()
        self.ports = container.aws_ports(conf, Clients(SESSION, conf.region, conf.aws_endpoint))
        self.metrics = Recorder()
        self.live = Live(self.metrics.totals, clock)
        self.console = Console(Gate(PORT, TOKEN), Stores.of(conf, self.ports), self.live,
                               MotoStore(conf.region), {"url": "http://127.0.0.1:9324"})
        self.answered: list[bytes] = []

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            peer: str = "127.0.0.1") -> tuple[int, dict[str, str], Any]:
        status, out, body = self.console.answer(method, path, COOKIE if headers is None
                                                else headers, peer)
        self.answered.append(body)
        is_json = out.get("Content-Type") == "application/json"
        return status, out, json.loads(body) if is_json and body else body

    def ok(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, body
        return body


@pytest.fixture
def local(stack: None, clock: FakeClock) -> Local:
    return Local(clock)


def queue_of(overview: dict[str, Any], name: str) -> dict[str, Any]:
    (account,) = [a for a in overview["accounts"] if a["account"] == TEST_ACCOUNT]
    (found,) = [q for q in account["queues"] if q["name"] == name]
    return dict(found)


# -- the gate ------------------------------------------------------------------------


def test_no_console_request_without_this_runs_token_is_answered(local: Local) -> None:
    for path in ("/console/", "/console/api/queues", "/console/api/live",
                 "/console/api/stored/000000000000/orders", "/console/static/console.js"):
        for headers in (HOST, {**HOST, "Cookie": f"sealq_console_{PORT}=guess"},
                        {**HOST, "Cookie": f"sealq_console_9325={TOKEN}"}):
            status, out, body = local.get(path, headers)
            assert status == 401, (path, headers)
            assert b"console.js" not in (body if isinstance(body, bytes) else b"")
            assert "Set-Cookie" not in out
    status, _, _ = local.get("/console/?token=guess", HOST)
    assert status == 401


def test_the_printed_token_becomes_a_strict_http_only_cookie_and_leaves_the_address(
        local: Local) -> None:
    url = local.console.url
    assert url.startswith(f"http://127.0.0.1:{PORT}/console/?token=")
    status, out, _ = local.get(url.split(str(PORT), 1)[1], HOST)
    assert status == 303
    assert out["Location"] == "/console/"
    cookie = out["Set-Cookie"]
    assert cookie.startswith(f"sealq_console_{PORT}={TOKEN};")
    assert {"HttpOnly", "SameSite=Strict", "Path=/console"} <= {
        part.strip() for part in cookie.split(";")}
    status, out, page = local.get("/console/")
    assert status == 200 and b"<title>sealq console</title>" in page
    assert "script-src 'self'" in out["Content-Security-Policy"]
    assert out["Cache-Control"] == "no-store" and out["X-Frame-Options"] == "DENY"


def test_a_foreign_peer_host_or_method_is_refused_even_with_the_token(local: Local) -> None:
    assert local.get("/console/api/queues", peer="192.168.1.20")[0] == 403
    assert local.get("/console/api/queues", peer="::ffff:127.0.0.1")[0] == 200
    for host in ("evil.example", f"evil.example:{PORT}", "127.0.0.1:9999", ""):
        assert local.get("/console/api/queues", {**COOKIE, "Host": host})[0] == 403, host
    status, out, _ = local.get("/console/api/queues", method="POST")
    assert (status, out["Allow"]) == (405, "GET, HEAD")
    assert local.get(f"/console/?token={TOKEN}", {"Host": "evil.example"})[0] == 403


def test_the_console_claims_its_own_paths_and_no_sqs_path() -> None:
    assert claims("/console") and claims("/console/api/live?x=1")
    for sqs_path in ("/", "/000000000000/console", "/consoles", "/000000000000/orders",
                     "/?Action=ListQueues"):
        assert not claims(sqs_path)


def test_the_console_serves_only_its_own_files(local: Local) -> None:
    for name in ("index.html", "console.js", "console.css", "chart.js"):
        assert local.get(f"/console/static/{name}")[0] == 200
    for path in ("/console/static/../gate.py", "/console/static/%2e%2e/gate.py",
                 "/console/static/gate.py", "/console/static/", "/console/nothing"):
        assert local.get(path)[0] == 404, path


# -- what it lists -------------------------------------------------------------------------


def test_the_overview_lists_each_queue_with_its_settings_counts_and_links(
        local: Local, sqs: Any, default_key_arn: str) -> None:
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    policy = {"deadLetterTargetArn": arn("orders-dlq"), "maxReceiveCount": 4}
    orders = sqs.create_queue(QueueName="orders", Attributes={
        "RedrivePolicy": json.dumps(policy), "KmsDataKeyReusePeriodSeconds": "60"})["QueueUrl"]
    allow_kms_key(default_key_arn)
    fifo = sqs.create_queue(QueueName="pay.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true",
        "KmsMasterKeyId": default_key_arn})["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=orders, MessageBody=f"order {n}")
    sqs.send_message(QueueUrl=orders, MessageBody="later", DelaySeconds=900)
    sqs.receive_message(QueueUrl=orders, MaxNumberOfMessages=2, VisibilityTimeout=600)
    sqs.send_message(QueueUrl=fifo, MessageBody="pay", MessageGroupId="g")
    sqs.send_message(QueueUrl=dlq, MessageBody="dead")
    record = local.ports.queues.get(TEST_ACCOUNT, "orders")
    assert record is not None
    local.ports.quarantine.put(record.quarantine_id, "m-1", b"{}")
    local.ports.tasks.start(MoveTask("t-1", arn("orders-dlq"), None, None, 0, 1))
    out = cli.run(["create-trigger", TEST_ACCOUNT, "orders", "python:tests.e2e.consumers:record",
                   "--batch-size", "5", "--filter", '{"body": {"kind": ["order"]}}'])
    assert out == 0

    overview = local.ok("/console/api/queues")
    assert overview["stack"] == {"url": "http://127.0.0.1:9324"}
    listed = queue_of(overview, "orders")
    assert listed["type"] == "standard" and listed["reusePeriod"] == 60
    assert (listed["visible"], listed["inFlight"], listed["delayed"]) == (3, 2, 1)
    assert listed["cmkIsDefault"] and listed["cmk"] == settings.get().default_kms_key
    assert listed["deadLetterQueue"] == {"arn": arn("orders-dlq"), "account": TEST_ACCOUNT,
                                         "name": "orders-dlq", "maxReceiveCount": 4}
    assert listed["quarantined"] == 1 and listed["moveTasksRunning"] == 0
    assert listed["trigger"] == {
        "function": "python:tests.e2e.consumers:record", "enabled": True, "batchSize": 5,
        "batchingWindow": 0, "reportBatchItemFailures": False, "maximumConcurrency": None,
        "filters": 1, "local": True}
    dead = queue_of(overview, "orders-dlq")
    assert dead["sources"] == [{"arn": arn("orders"), "account": TEST_ACCOUNT, "name": "orders"}]
    assert dead["moveTasksRunning"] == 1 and dead["visible"] == 1
    paid = queue_of(overview, "pay.fifo")
    assert (paid["type"], paid["cmk"], paid["cmkIsDefault"]) == ("FIFO", default_key_arn, False)
    assert (paid["reusePeriod"], paid["trigger"], paid["deadLetterQueue"]) == (300, None, None)
    assert '"kind"' not in json.dumps(overview)  # a filter's values are not shown


@pytest.fixture
def default_key_arn(stack: None) -> str:
    kms = boto3.client("kms", region_name=REGION)
    return str(kms.describe_key(KeyId=settings.get().default_kms_key)["KeyMetadata"]["Arn"])


# -- what is stored ------------------------------------------------------------------------


def test_the_stored_view_shows_each_record_at_rest_and_receives_nothing(
        local: Local, sqs: Any, default_key_arn: str) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    bodies = ["a small order", "x" * 300_000]  # the second goes to S3
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            "customer": {"DataType": "String", "StringValue": "alice-in-the-clear"}})
    held = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=600)

    view = local.ok(f"/console/api/stored/{TEST_ACCOUNT}/orders")
    assert view["available"] and view["listed"] == 2
    assert view["counts"] == {"visible": 1, "inFlight": 1, "delayed": 0}
    assert sorted(r["state"] for r in view["records"]) == ["in flight", "visible"]
    assert sorted(r["location"]["form"] for r in view["records"]) == ["S3", "inline"]
    record = local.ports.queues.get(TEST_ACCOUNT, "orders")
    assert record is not None
    for found in view["records"]:
        envelope = found["envelope"]
        assert envelope["cmkArn"] == default_key_arn
        assert envelope["suite"] == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
        assert envelope["suiteId"] == "0x0478" and envelope["formatVersion"] == 2
        assert envelope["encryptionContext"] == {
            "sealq:account": TEST_ACCOUNT, "sealq:queue-arn": arn("orders"),
            "sealq:queue-id": record.queue_id}
        assert envelope["trailingBytes"] == 0 and envelope["frames"] >= 1
        assert envelope["envelopeBytes"] > envelope["ciphertextBytes"] > 0
        assert [k["encryptedKeyBytes"] > 0 for k in envelope["dataKeys"]] == [True]
        if found["location"]["form"] == "inline":  # base64 of the envelope: 4 chars per 3 bytes
            assert 0 <= found["storedBytes"] * 3 // 4 - envelope["envelopeBytes"] <= 2
        else:
            assert envelope["ciphertextBytes"] > 300_000 > found["storedBytes"]
    # Nothing was received: the message nobody holds still shows its first receive,
    # and the held one its second only after its timeout.
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                              MessageSystemAttributeNames=["ApproximateReceiveCount"])
    (fresh,) = got["Messages"]
    assert fresh["Attributes"]["ApproximateReceiveCount"] == "1"
    assert fresh["MessageId"] != held["Messages"][0]["MessageId"]
    assert local.get(f"/console/api/stored/{TEST_ACCOUNT}/nothing")[0] == 404


def test_a_record_that_is_not_an_esdk_message_is_described_as_such(local: Local, sqs: Any
                                                                  ) -> None:
    sqs.create_queue(QueueName="orders")
    record = local.ports.queues.get(TEST_ACCOUNT, "orders")
    assert record is not None
    backing = boto3.client("sqs", region_name=REGION)
    backing.send_message(QueueUrl=record.backing_url,
                         MessageBody=base64.b64encode(b"\x02\x04\x78 not really").decode())
    backing.send_message(QueueUrl=record.backing_url, MessageBody="!!! not base64")
    view = local.ok(f"/console/api/stored/{TEST_ACCOUNT}/orders")
    problems = sorted(r["problem"] for r in view["records"])
    assert problems[0].startswith("not an ESDK message (")
    assert problems[1] == "the stored body is neither base64 nor a pointer"


def test_no_console_answer_holds_a_body_an_attribute_value_or_a_secret(
        local: Local, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    secrets = [f"plaintext-body-{n}" for n in range(3)] + ["attribute-value-in-the-clear"]
    for body in secrets[:3]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
            "note": {"DataType": "String", "StringValue": secrets[3]}})
    local.metrics.add("Requests", Action="SendMessage")
    for path in ("/console/", "/console/api/queues", "/console/api/live",
                 f"/console/api/stored/{TEST_ACCOUNT}/orders"):
        local.ok(path)
    everything = b"\n".join(local.answered)
    for secret in [*secrets, TEST_SECRET]:
        assert secret.encode() not in everything
        assert base64.b64encode(secret.encode()) not in everything


def test_describe_reads_only_the_clear_header_of_an_envelope(local: Local, sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="b" * 1000)
    record = local.ports.queues.get(TEST_ACCOUNT, "orders")
    assert record is not None
    (at_rest,), _ = MotoStore(REGION).records(record.backing_url)
    sealed = base64.b64decode(at_rest.body)
    described = describe(sealed)
    assert described["envelopeBytes"] == len(sealed)
    assert described["ciphertextBytes"] > 1000  # the envelope holds more than the body
    assert described["headerBytes"] + described["ciphertextBytes"] < len(sealed)


# -- live ----------------------------------------------------------------------------------


def test_live_figures_are_the_recorders_totals_with_rates_and_the_kms_history(
        local: Local, clock: FakeClock) -> None:
    metrics, live = local.metrics, local.live
    clock.advance(1)
    for _ in range(10):
        metrics.add("Requests", Action="SendMessage")
        metrics.add("KeyCacheHits", Tier="1")
    metrics.add("Errors", Action="SendMessage", Code="KmsThrottled")
    metrics.add("KmsCalls", Operation="GenerateDataKey", Purpose="DataKey")
    metrics.add("KmsCalls", Operation="Decrypt", Purpose="Secret")
    metrics.add("KeyCacheMisses", Tier="2")
    live.take()
    clock.advance(5)
    for _ in range(20):
        metrics.add("Requests", Action="ReceiveMessage")
        metrics.add("KeyCacheHits", Tier="1")
    metrics.add("KeyCacheMisses", Tier="1")

    view = live.view()
    assert (view["requests"], view["errors"]) == (30, 1)
    assert view["requestsPerSecond"] == pytest.approx(20 / 5)
    by_action = {a["action"]: a for a in view["actions"]}
    assert by_action["ReceiveMessage"]["requestsPerSecond"] == pytest.approx(4.0)
    assert by_action["SendMessage"]["requestsPerSecond"] == 0
    assert by_action["SendMessage"]["errors"] == 1
    tier1, tier2 = view["caches"]
    assert (tier1["hits"], tier1["misses"], tier1["ratio"]) == (30, 1, pytest.approx(30 / 31))
    assert (tier2["hits"], tier2["misses"], tier2["ratio"]) == (0, 1, 0)
    assert view["kms"] == {"made": 1, "perMessage": 31, "saved": 30, "secrets": 1,
                           "throttled": 0, "savedShare": pytest.approx(30 / 31)}
    assert [point[1:] for point in view["history"]] == [[0, 0], [10, 1], [31, 1]]
    assert [point[0] for point in view["history"]] == [0, 1, 6]
