"""Metrics and structured logs as CloudWatch would read them: the EMF lines and JSON log
lines Powertools prints to stdout, parsed back, never sealq's counters read directly."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import FakeClock
from chalicelib.handler import container
from chalicelib.keyservice import KeyServiceClient
from chalicelib.keyservice import process as key_service_process
from chalicelib.keyservice.transport import InProcessTransport
from chalicelib.observability.logs import unconfigure_json_logs
from chalicelib.observability.metrics import KMS_THROTTLED, Recorder
from tests.harness import (
    ENDPOINT,
    REGION,
    SESSION,
    TEST_CREDENTIALS,
    Invocations,
    KmsCounter,
    auth_secrets,
    install_test_key,
    sqs_client,
)
from tests.memory import memory_ports


def emf_blobs(stdout: str) -> list[dict[str, Any]]:
    """Every EMF document among the lines a process printed."""
    blobs = []
    for line in stdout.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blobs.append(json.loads(line))
    return blobs


def log_lines(stdout: str) -> list[dict[str, Any]]:
    """Every structured (non-EMF) JSON log line."""
    return [json.loads(line) for line in stdout.splitlines()
            if line.startswith("{") and '"_aws"' not in line]


def metric(blobs: list[dict[str, Any]], name: str, **dimensions: str) -> float:
    """The sum of ``name`` over the blobs whose dimension set is exactly ``dimensions``."""
    total = 0.0
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        (keys,) = directive["Dimensions"]
        names = [m["Name"] for m in directive["Metrics"]]
        if name in names and {k: blob[k] for k in keys} == dimensions:
            value = blob[name]
            total += sum(value) if isinstance(value, list) else value
    return total


def test_a_flush_prints_one_emf_blob_per_dimension_set_with_counts_summed() -> None:
    recorder = Recorder(publish=True)
    for _ in range(3):
        recorder.add("Requests", Action="SendMessage")
    recorder.add("Errors", Action="SendMessage", Code="KmsThrottled")
    recorder.add("KmsThrottled")
    recorder.add("SealedBytes", 300)
    recorder.add("KeyServiceLatency", 2.5)
    recorder.add("KeyServiceLatency", 4.0)
    with pytest.raises(ValueError):
        recorder.add("CustomerSecret")  # only sealq's own names

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        recorder.flush()
        recorder.flush()  # nothing pending: prints nothing
    blobs = emf_blobs(out.getvalue())
    dimension_sets = sorted(b["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0] for b in blobs)
    assert dimension_sets == [[], ["Action"], ["Action", "Code"]]
    for blob in blobs:
        assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "sealq"
        assert "service" not in blob  # alarms find KmsThrottled by its name alone
    assert metric(blobs, "Requests", Action="SendMessage") == 3
    assert metric(blobs, "Errors", Action="SendMessage", Code="KmsThrottled") == 1
    assert metric(blobs, "KmsThrottled") == 1
    (plain,) = [b for b in blobs if b["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]]
    assert plain["KeyServiceLatency"] == [2.5, 4.0]
    units = {m["Name"]: m["Unit"] for m in plain["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"KmsThrottled": "Count", "SealedBytes": "Bytes",
                     "KeyServiceLatency": "Milliseconds"}
    totals = {(t.name, tuple(t.dimensions.items())): t.value for t in recorder.totals()}
    assert totals[("Requests", (("Action", "SendMessage"),))] == 3  # kept after the flush


def test_locally_the_recorder_keeps_totals_and_prints_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorder = Recorder()
    recorder.add("KmsCalls", Operation="Decrypt", Purpose="DataKey")
    recorder.flush()
    assert capsys.readouterr().out == ""
    (total,) = recorder.totals()
    assert (total.name, dict(total.dimensions), total.value) == (
        "KmsCalls", {"Operation": "Decrypt", "Purpose": "DataKey"}, 1)


def test_a_metric_is_recorded_with_exactly_its_own_dimensions() -> None:
    """CloudWatch finds a metric only under its full dimension set: the dashboard and the
    alarms name those sets, so a sample with fewer, more or other dimensions is refused."""
    recorder = Recorder()
    for name, dimensions in [("Requests", {}), ("Requests", {"Action": "A", "Code": "B"}),
                             ("KmsCalls", {"Operation": "Decrypt"}),
                             ("KmsThrottled", {"Operation": "Decrypt"}),
                             ("RequestLatency", {"Code": "X"})]:
        with pytest.raises(ValueError):
            recorder.add(name, 1, **dimensions)
    assert recorder.totals() == []
    recorder.add("MoveTasksEnded", Status="COMPLETED")
    recorder.add("RequestLatency", 3.0, Action="SendMessage")
    assert [(t.name, dict(t.dimensions)) for t in recorder.totals()] == [
        ("MoveTasksEnded", {"Status": "COMPLETED"}),
        ("RequestLatency", {"Action": "SendMessage"})]


def test_emf_counters_show_cache_hits_growing_while_kms_calls_stay_at_the_bound(
    stack: None, clock: FakeClock, capsys: pytest.CaptureFixture[str],
) -> None:
    """Memory storage, the real key service on (moto's) KMS and key table; KMS calls are
    also counted at botocore's layer, and sealq's EMF must agree with it."""
    conf = settings.get()
    recorder = Recorder(publish=True)
    clients = Clients(SESSION, conf.region, conf.aws_endpoint)
    kms = KmsCounter()
    clients.get("kms").meta.events.register("before-call.kms.*", kms.hook(0))
    core = key_service_process.key_service_core(conf, clients, clock=clock, metrics=recorder)
    ports = memory_ports(clock)
    secrets = auth_secrets()
    install_test_key(ports.accounts, secrets, clock)
    frontend = container.build_frontend(
        conf, ports=ports, key_service=KeyServiceClient(InProcessTransport(core), recorder),
        clock=clock, local_clock=clock, secrets=secrets, metrics=recorder,
    )
    sqs = sqs_client(Invocations(frontend, recorder))

    def drain(url: str) -> int:
        got = 0
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
                "Messages", []):
            for m in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            got += len(messages)
        return got

    url = sqs.create_queue(QueueName="metered")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="cold")
    assert drain(url) == 1
    cold = emf_blobs(capsys.readouterr().out)
    assert metric(cold, "KeyCacheMisses", Tier="1") == 1
    assert metric(cold, "KeyCacheMisses", Tier="2") == 1
    for operation in ("GenerateDataKey", "Decrypt"):
        assert (metric(cold, "KmsCalls", Operation=operation, Purpose="DataKey")
                + metric(cold, "KmsCalls", Operation=operation, Purpose="Secret")
                ) == kms.total(operation)
    assert kms.total("GenerateDataKey") >= 1

    for n in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=f"warm {n}")
    assert drain(url) == 20
    warm = emf_blobs(capsys.readouterr().out)
    assert metric(warm, "Requests", Action="SendMessage") == 20
    # One latency sample per request, sent as values (CloudWatch's percentiles need them).
    latencies = [value for b in warm if "RequestLatency" in b and b.get("Action") == "SendMessage"
                 for value in (b["RequestLatency"] if isinstance(b["RequestLatency"], list)
                               else [b["RequestLatency"]])]
    assert len(latencies) == 20 and all(value > 0 for value in latencies)
    assert metric(warm, "KeyCacheHits", Tier="1") == 40  # 20 seals, 20 opens
    assert metric(warm, "KeyCacheMisses", Tier="1") == 0
    assert metric(warm, "KeyServiceCalls") == 0
    assert not [blob for blob in warm if "KmsCalls" in blob]
    assert metric(warm, "SealedBytes") > 20 * len("warm 0")
    before = kms.total("GenerateDataKey")

    clock.advance(301)  # past the default reuse period: one new key, once
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"next period {n}")
    rotated = emf_blobs(capsys.readouterr().out)
    assert metric(rotated, "KmsCalls", Operation="GenerateDataKey", Purpose="DataKey") == 1
    assert kms.total("GenerateDataKey") == before + 1
    assert metric(rotated, "KeyCacheMisses", Tier="1") == 1
    assert metric(rotated, "KeyCacheHits", Tier="1") == 4
    assert metric(rotated, "KeyServiceCalls") == 1
    assert metric(rotated, "KeyServiceLatency") > 0


@pytest.fixture
def lambda_like(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process container configured as in Lambda: JSON logs and EMF on stdout."""
    monkeypatch.setenv("SEALQ_LOG_FORMAT", "json")
    monkeypatch.setenv("SEALQ_METRICS", "emf")
    container.reset()
    yield
    unconfigure_json_logs()


def _signed(target: str, body: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url=ENDPOINT + "/", data=data, headers={
        "X-Amz-Target": f"AmazonSQS.{target}", "Content-Type": "application/x-amz-json-1.0"})
    request.headers["Host"] = urlsplit(ENDPOINT).netloc
    SigV4Auth(TEST_CREDENTIALS, "sqs", REGION).add_auth(request)
    return {k: str(v) for k, v in request.headers.items()}, data


def test_each_invocation_logs_one_json_line_with_all_three_request_ids_and_flushes_emf(
    stack: None, lambda_like: None, capsys: pytest.CaptureFixture[str],
) -> None:
    context = {"requestId": "apigw-0001", "path": "/", "httpMethod": "POST"}
    invocation = SimpleNamespace(aws_request_id="lambda-0001",
                                 get_remaining_time_in_millis=lambda: 30_000)
    created = container.serve_http(*_signed("CreateQueue", {"QueueName": "logged"}),
                                   context, invocation)
    missing = container.serve_http(*_signed("GetQueueUrl", {"QueueName": "absent"}),
                                   {**context, "requestId": "apigw-0002"}, invocation)
    assert (created.status, missing.status) == (200, 400)
    out = capsys.readouterr().out

    lines = [line for line in log_lines(out) if line.get("action")]
    assert [(line["action"], line["status"], line.get("code"), line["level"])
            for line in lines] == [
        ("CreateQueue", 200, None, "INFO"), ("GetQueueUrl", 400, "QueueDoesNotExist", "INFO")]
    for line, response, gateway_id in zip(lines, (created, missing), ("apigw-0001", "apigw-0002"),
                                          strict=True):
        assert line["request_id"] == response.headers["x-amzn-RequestId"]
        assert line["apigw_request_id"] == gateway_id
        assert line["function_request_id"] == "lambda-0001"
        assert line["service"] == "sealq" and line["latency_ms"] >= 0
        assert "logged" not in json.dumps(line)  # no parameter, not even a queue name

    blobs = emf_blobs(out)
    assert metric(blobs, "Requests", Action="CreateQueue") == 1
    assert metric(blobs, "Requests", Action="GetQueueUrl") == 1
    assert metric(blobs, "Errors", Action="GetQueueUrl", Code="QueueDoesNotExist") == 1
    assert metric(blobs, "Errors", Action="CreateQueue", Code="QueueDoesNotExist") == 0


def test_the_key_service_function_flushes_its_own_metrics_with_its_request_id(
    stack: None, lambda_like: None, capsys: pytest.CaptureFixture[str],
) -> None:
    event = {"op": "data_key", "queue_arn": "arn:aws:sqs:us-east-1:000000000000:q",
             "cmk": settings.get().default_kms_key, "reuse_period": 300,
             "context": {"sealq:queue-arn": "arn:aws:sqs:us-east-1:000000000000:q",
                         "sealq:account": "000000000000"}}
    invocation = SimpleNamespace(aws_request_id="lambda-ks-1")
    handler_request = "8d1f6a2e-0c4b-4e53-9a57-3f1b2c4d5e6f"
    assert "ok" in container.serve_key_service({**event, "request_id": handler_request},
                                               invocation)
    assert "ok" in container.serve_key_service({**event, "request_id": "not\nan id"},
                                               invocation)
    out = capsys.readouterr().out
    (generated,) = [line for line in log_lines(out) if "generated" in line["message"]]
    assert generated["request_id"] == handler_request  # the handler's request, correlated
    assert generated["function_request_id"] == "lambda-ks-1"
    assert "not\nan id" not in out
    blobs = emf_blobs(out)
    assert metric(blobs, "KeyCacheMisses", Tier="2") == 1
    assert metric(blobs, "KeyCacheHits", Tier="2") == 1
    assert metric(blobs, "KmsCalls", Operation="GenerateDataKey", Purpose="DataKey") == 1


def test_logs_are_json_and_metrics_emf_by_default_only_in_lambda() -> None:
    local = settings.from_environ({})
    in_lambda = settings.from_environ({"AWS_LAMBDA_FUNCTION_NAME": "api_handler",
                                       "SEALQ_KEY_SERVICE_FUNCTION": "key_service"})
    assert (local.log_format, local.metrics, local.log_level) == ("text", "off", "INFO")
    assert (in_lambda.log_format, in_lambda.metrics) == ("json", "emf")
    assert settings.from_environ({"POWERTOOLS_LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert settings.from_environ({"POWERTOOLS_LOG_LEVEL": "DEBUG",
                                  "SEALQ_LOG_LEVEL": "WARNING"}).log_level == "WARNING"
    for bad in ({"SEALQ_LOG_LEVEL": "LOUD"}, {"SEALQ_METRICS": "statsd"},
                {"SEALQ_LOG_FORMAT": "xml"}):
        with pytest.raises(settings.SettingsError):
            settings.from_environ(bad)


def test_a_deployed_stack_publishes_under_its_own_namespace(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The template sets POWERTOOLS_METRICS_NAMESPACE to sealq/<stack name>, and the
    KmsThrottled alarm watches that namespace; a malformed one is refused at start."""
    conf = settings.from_environ({"POWERTOOLS_METRICS_NAMESPACE": "sealq/orders-prod"})
    assert conf.metrics_namespace == "sealq/orders-prod"
    assert settings.from_environ({}).metrics_namespace == "sealq"
    for bad in ("AWS/Lambda", "sealq$", "x" * 256):
        with pytest.raises(settings.SettingsError):
            settings.from_environ({"POWERTOOLS_METRICS_NAMESPACE": bad})
    recorder = Recorder(publish=True, namespace=conf.metrics_namespace)
    recorder.add(KMS_THROTTLED)
    recorder.flush()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    [directive] = [d for b in blobs for d in b["_aws"]["CloudWatchMetrics"]]
    assert directive["Namespace"] == "sealq/orders-prod"
    assert directive["Dimensions"] == [[]]
