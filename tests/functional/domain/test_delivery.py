"""Never a lost or hidden message: each reproduction of the delivery issue, on moto.

A bad message never costs the good ones; transient is not tamper; tampered
messages go to the quarantine; dead-letter queues never lose or strand a message;
responses fit API Gateway's proxy; a queue's incarnation is bound into its messages.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.clock import FakeClock
from chalicelib.crypto import handles
from chalicelib.keyservice.api import REFUSAL_TTL
from tests.harness import REGION, Fleet, allow_kms_key, signed_handle, sqs_client
from tests.stores import backing_url_of

ACCOUNT = "000000000000"


@pytest.fixture
def two(stack: None, clock: FakeClock) -> Fleet:
    """Two key-service containers: a consumer on the second has nothing cached."""
    return Fleet(clock, key_service_containers=2)


def moto_sqs() -> Any:
    return boto3.client("sqs", region_name=REGION)


def stored_bodies(name: str) -> list[str]:
    """The stored bodies of a queue's backing messages (peeked: made visible again)."""
    sqs, url = moto_sqs(), backing_url_of(name)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [m["Body"] for m in got.get("Messages", [])]


def flip_last_bit(stored: str) -> str:
    sealed = bytearray(base64.b64decode(stored))
    sealed[-20] ^= 0x01  # inside the frame's ciphertext or tag
    return base64.b64encode(bytes(sealed)).decode()


def quarantined(fleet: Fleet, name: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=settings.get().payload_bucket, Prefix="quarantine/")
    return [o["Key"] for o in listed.get("Contents", [])]


def drain(sqs: Any, url: str, rounds: int = 10, **kwargs: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(rounds):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **kwargs).get(
            "Messages", [])
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        got.extend(batch)
    return got


def refuse_decrypt_under(fleet: Fleet, cmk_arn: str, code: str) -> Counter[str]:
    """Make every key-service container's KMS refuse Decrypt for keys under ``cmk_arn``;
    returns a counter of the refused calls."""
    refused: Counter[str] = Counter()

    def hook(params: dict[str, Any], **_: Any) -> Any:
        if json.loads(params["body"]).get("KeyId") != cmk_arn:
            return None
        refused[code] += 1
        raise ClientError({"Error": {"Code": code, "Message": "injected"},
                           "ResponseMetadata": {"HTTPStatusCode": 400}}, "Decrypt")

    for kms in fleet.kms_clients:
        kms.meta.events.register("before-call.kms.Decrypt", hook)
    return refused


# -- one bad message never blocks the others ------------------------------------------


@pytest.mark.parametrize("kms_code", ["DisabledException", "NotFoundException",
                                      "AccessDeniedException", "InvalidCiphertextException"])
def test_messages_under_a_refused_key_never_cost_the_good_ones(
    two: Fleet, clock: FakeClock, kms_code: str
) -> None:
    fleet = two
    kms = boto3.client("kms", region_name=REGION)
    old = kms.create_key()["KeyMetadata"]["Arn"]
    new = kms.create_key()["KeyMetadata"]["Arn"]
    allow_kms_key(old, new)
    producer = sqs_client(fleet.handler(core=0))
    url = producer.create_queue(QueueName="q", Attributes={"KmsMasterKeyId": old})["QueueUrl"]
    for n in range(3):
        producer.send_message(QueueUrl=url, MessageBody=f"old {n}")
    producer.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": new})
    clock.advance(settings.get().queue_cache_ttl + 1)
    for n in range(5):
        producer.send_message(QueueUrl=url, MessageBody=f"new {n}")
    refused = refuse_decrypt_under(fleet, old, kms_code)

    consumer = sqs_client(fleet.handler(core=1), retries=1)  # cold: asks KMS
    got = drain(consumer, url, rounds=4, VisibilityTimeout=30)

    assert sorted(m["Body"] for m in got) == [f"new {n}" for n in range(5)]
    # The refused ones stay in the queue, in flight: counted, left to their redrive.
    attrs = producer.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "3"
    assert sum(refused.values()) == 1  # one data key, asked once: the refusal is remembered
    assert quarantined(fleet, "q") == []


def test_a_kms_error_is_returned_only_when_nothing_else_could_be(
    two: Fleet, clock: FakeClock
) -> None:
    fleet = two
    kms = boto3.client("kms", region_name=REGION)
    cmk = kms.create_key()["KeyMetadata"]["Arn"]
    allow_kms_key(cmk)
    producer = sqs_client(fleet.handler(core=0))
    url = producer.create_queue(QueueName="q", Attributes={"KmsMasterKeyId": cmk})["QueueUrl"]
    producer.send_message(QueueUrl=url, MessageBody="under a disabled key")
    refused = refuse_decrypt_under(fleet, cmk, "DisabledException")
    consumer = sqs_client(fleet.handler(core=1), retries=1)

    with pytest.raises(consumer.exceptions.KmsDisabled):
        consumer.receive_message(QueueUrl=url, VisibilityTimeout=0)
    for _ in range(5):  # within the refusal window KMS is not asked again
        with pytest.raises(consumer.exceptions.KmsDisabled):
            consumer.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert sum(refused.values()) == 1
    clock.advance(REFUSAL_TTL)
    with pytest.raises(consumer.exceptions.KmsDisabled):
        consumer.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert sum(refused.values()) == 2


# -- transient is not tamper -------------------------------------------------------------


def fail_calls(client: Any, event: str, code: str, status: int, operation: str) -> Any:
    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": code, "Message": "injected"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    client.meta.events.register(event, fail)
    return lambda: client.meta.events.unregister(event, fail)


@pytest.mark.parametrize("step", ["s3", "key-service", "kms"])
def test_a_transient_fault_while_receiving_hides_nothing(two: Fleet, step: str) -> None:
    fleet = two
    producer = sqs_client(fleet.handler(core=0))
    url = producer.create_queue(QueueName="q")["QueueUrl"]
    producer.send_message(QueueUrl=url, MessageBody="small")
    producer.send_message(QueueUrl=url, MessageBody="L" * 300_000)  # its body is in S3
    handler, clients = fleet.container(core=1)  # cold: its key service must ask KMS
    consumer = sqs_client(handler, retries=1)
    if step == "s3":
        undo = fail_calls(clients.get("payloads"), "before-call.s3.GetObject", "SlowDown",
                          503, "GetObject")
    elif step == "kms":
        undo = fail_calls(fleet.kms_clients[1], "before-call.kms.Decrypt",
                          "KMSInternalException", 500, "Decrypt")
    else:
        core = fleet.cores[1]
        original = core.handle
        core.handle = lambda payload: {  # type: ignore[method-assign]
            "error": {"code": "ServiceUnavailable", "message": "timed out"}}

        def undo() -> None:
            core.handle = original  # type: ignore[method-assign]

    with pytest.raises(ClientError) as raised:
        consumer.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    assert raised.value.response["Error"]["Code"] == "RequestThrottled"
    undo()
    # Nothing is hidden: both are visible again at once, neither was quarantined.
    got = drain(consumer, url, rounds=2)
    assert sorted(len(m["Body"]) for m in got) == [5, 300_000]
    assert quarantined(fleet, "q") == []


# -- quarantine -----------------------------------------------------------------------------


def test_a_tampered_message_at_the_head_of_a_fifo_group_is_quarantined_and_the_group_flows(
    fleet: Fleet,
) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="q.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="template", MessageGroupId="other")
    template = stored_bodies("q.fifo")[0]
    drain(sqs, url, rounds=1)
    backing = backing_url_of("q.fifo")
    moto_sqs().send_message(QueueUrl=backing, MessageBody=flip_last_bit(template),
                            MessageGroupId="g", MessageDeduplicationId="tampered")
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"good {n}", MessageGroupId="g")

    bodies = []
    for _ in range(6):  # one at a time, as the SDKs default to
        for m in sqs.receive_message(QueueUrl=url).get("Messages", []):
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert bodies == ["good 0", "good 1", "good 2"]
    assert len(quarantined(fleet, "q.fifo")) == 1
    # It is out of the queue for good: never redelivered.
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_the_quarantine_holds_the_message_as_stored_never_its_plaintext(fleet: Fleet) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="very secret plaintext")
    template = stored_bodies("q")[0]
    drain(sqs, url, rounds=1)
    moto_sqs().send_message(QueueUrl=backing_url_of("q"), MessageBody=flip_last_bit(template))
    assert drain(sqs, url, rounds=2) == []
    (key,) = quarantined(fleet, "q")
    s3 = boto3.client("s3", region_name=REGION)
    record = s3.get_object(Bucket=settings.get().payload_bucket, Key=key)["Body"].read()
    assert b"very secret plaintext" not in record
    assert json.loads(record)["stored_body"] == flip_last_bit(template)


# -- dead-letter queues never lose or strand a message ---------------------------------------


def with_dlq(sqs: Any, source: str = "source", dlq: str = "dead") -> tuple[str, str, str]:
    dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
    src = sqs.create_queue(QueueName=source, Attributes={"RedrivePolicy": policy})["QueueUrl"]
    return src, dlq_url, arn


def redrive_once(sqs: Any, src: str) -> None:
    """One receive (count reaches maxReceiveCount), handed back, then the backing queue
    moves the message on its next receive."""
    sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)
    sqs.receive_message(QueueUrl=src, VisibilityTimeout=0)


def test_a_message_past_max_receives_is_kept_while_its_dead_letter_queue_is_gone(
    fleet: Fleet,
) -> None:
    sqs = fleet.sqs()
    src, dlq, _ = with_dlq(sqs)
    sqs.delete_queue(QueueUrl=dlq)
    sqs.send_message(QueueUrl=src, MessageBody="keep me")
    redrive_once(sqs, src)
    got = sqs.receive_message(QueueUrl=src).get("Messages", [])
    assert [m["Body"] for m in got] == ["keep me"]  # not lost into a deleted backing queue


def test_a_re_created_dead_letter_queue_receives_and_opens_the_sources_dead_letters(
    fleet: Fleet,
) -> None:
    sqs = fleet.sqs()
    src, dlq, _ = with_dlq(sqs)
    sqs.delete_queue(QueueUrl=dlq)
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    redrive_once(sqs, src)
    got = sqs.receive_message(QueueUrl=dlq, MessageSystemAttributeNames=["All"])["Messages"]
    assert got[0]["Body"] == "poison"
    assert got[0]["Attributes"]["DeadLetterQueueSourceArn"].endswith(":source")


@pytest.mark.parametrize("then", ["policy-removed", "source-deleted", "source-re-created"])
def test_a_dead_letter_opens_in_its_queue_whatever_happens_to_its_source_later(
    fleet: Fleet, then: str
) -> None:
    sqs = fleet.sqs()
    src, dlq, _ = with_dlq(sqs)
    sqs.send_message(QueueUrl=src, MessageBody="poison")
    redrive_once(sqs, src)
    if then == "policy-removed":
        sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": ""})
    else:
        sqs.delete_queue(QueueUrl=src)
        if then == "source-re-created":
            sqs.create_queue(QueueName="source")
    other = fleet.sqs()  # another container, with nothing cached
    got = other.receive_message(QueueUrl=dlq).get("Messages", [])
    assert [m["Body"] for m in got] == ["poison"]
    assert quarantined(fleet, "dead") == []


# -- responses that fit ------------------------------------------------------------------------


@pytest.mark.parametrize("char", ['"', "\\", "\n", "\u00e9"])
def test_receive_responses_fit_the_lambda_proxy_whatever_the_bodies(
    fleet: Fleet, char: str
) -> None:
    handler = fleet.handler()
    sqs = sqs_client(handler)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    size = 1_048_576 // len(char.encode())
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=char * (size - 10) + f"{n:010d}")
    headers = {"X-Amz-Target": "AmazonSQS.ReceiveMessage",
               "Content-Type": "application/x-amz-json-1.0"}
    request = json.dumps({"QueueUrl": url, "MaxNumberOfMessages": 10}).encode()
    seen = set()
    for _ in range(6):
        response = signed_handle(handler, headers, request, "http://x")
        # As the Lambda runtime (python3.12 and newer) writes it: non-ASCII as UTF-8.
        proxied = json.dumps({"statusCode": 200, "headers": response.headers,
                              "body": response.body}, ensure_ascii=False)
        assert len(proxied.encode()) < 6_291_456
        for m in json.loads(response.body).get("Messages", []):
            seen.add(m["Body"][-10:])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert seen == {f"{n:010d}" for n in range(3)}  # none was left invisible


# -- incarnations and receipt handles -----------------------------------------------------------


def test_a_message_of_a_deleted_queue_does_not_open_in_its_namesake(fleet: Fleet) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="for the first q only")
    stored = stored_bodies("q")[0]
    sqs.delete_queue(QueueUrl=url)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    moto_sqs().send_message(QueueUrl=backing_url_of("q"), MessageBody=stored)
    assert drain(sqs, url, rounds=2) == []
    assert len(quarantined(fleet, "q")) == 1


def test_receipt_handles_reveal_nothing_of_the_backing_store(fleet: Fleet) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="L" * 300_000)
    handle = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"][0][
        "ReceiptHandle"]
    backing = moto_sqs().receive_message(QueueUrl=backing_url_of("q"))["Messages"][0]
    pointer = json.loads(backing["Body"])["sealq-s3"]
    raw = base64.urlsafe_b64decode(handle[len(handles.PREFIX):] + "==")
    for secret in (backing["ReceiptHandle"], pointer["key"], pointer["bucket"]):
        assert secret.encode() not in raw and secret not in handle


# -- outage ride-through ------------------------------------------------------------------


def test_a_key_service_outage_is_ridden_through_until_the_keys_deadline(
    fleet: Fleet, clock: FakeClock
) -> None:
    handler = fleet.handler()
    sqs = sqs_client(handler, retries=1)
    url = sqs.create_queue(QueueName="q", Attributes={
        "KmsDataKeyReusePeriodSeconds": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="warm")  # tier 1 holds the key now
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)  # and the handle secret
    core = fleet.cores[0]
    core.handle = lambda payload: {  # type: ignore[method-assign]
        "error": {"code": "ServiceUnavailable", "message": "down"}}

    for n in range(5):  # the key service is down: the warm handler still seals and opens
        sqs.send_message(QueueUrl=url, MessageBody=f"during {n}")
    assert len(drain(sqs, url, rounds=2)) == 6
    clock.advance(60)  # the key's deadline: never used at or after it
    before = moto_sqs().get_queue_attributes(QueueUrl=backing_url_of("q"),
                                             AttributeNames=["All"])["Attributes"]
    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="after the deadline")
    assert raised.value.response["Error"]["Code"] == "RequestThrottled"
    after = moto_sqs().get_queue_attributes(QueueUrl=backing_url_of("q"),
                                            AttributeNames=["All"])["Attributes"]
    assert after["ApproximateNumberOfMessages"] == before["ApproximateNumberOfMessages"] == "0"


def test_the_operator_lists_counts_and_purges_a_queues_quarantine(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.admin import cli as admin
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    template = stored_bodies("q")[0]
    drain(sqs, url, rounds=1)
    for _ in range(2):
        moto_sqs().send_message(QueueUrl=backing_url_of("q"), MessageBody=flip_last_bit(template))
    drain(sqs, url, rounds=2)

    def command(*args: str) -> dict[str, Any]:
        assert admin.run(list(args)) == 0
        return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))

    listed = command("quarantine-list", ACCOUNT, "q")
    assert listed["Count"] == 2 and len(listed["MessageIds"]) == 2
    assert command("quarantine-purge", ACCOUNT, "q")["Purged"] == 2
    assert command("quarantine-count", ACCOUNT, "q")["Count"] == 0
    assert admin.run(["quarantine-count", ACCOUNT, "nope"]) == 1
