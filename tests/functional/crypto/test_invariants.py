"""DESIGN.md's invariants, as behaviour of the whole handler path on moto.

Every test drives real boto3 SQS clients against simulated handler containers
(tests/harness.py) and inspects the stores directly, the way an auditor would.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
import pytest
from aws_encryption_sdk.identifiers import CommitmentPolicy

from chalicelib import settings
from chalicelib.clock import FakeClock
from chalicelib.observability.metrics import Recorder
from tests.harness import (
    REGION,
    TEST_SECRET,
    Fleet,
    Invocations,
    allow_kms_key,
    forms,
    kms_fault,
    sqs_client,
)
from tests.stores import (
    backing_messages,
    backing_url_of,
    everything_stored,
    header_of,
    open_plain,
    sealed_bytes,
)

SECRET_BODIES = ["SECRET-BODY-alpha-7f3a", "SECRET-BODY-beta-91c2 ünïcödé"]
SECRET_ATTRIBUTE = "SECRET-ATTR-55d1"


def plaintext_data_key(sealed: bytes) -> bytes:
    """The DEK of a stored message, recovered with KMS the way disaster recovery would."""
    header = header_of(sealed)
    (edk,) = header.encrypted_data_keys
    out = boto3.client("kms", region_name=REGION).decrypt(
        CiphertextBlob=edk.encrypted_data_key,
        EncryptionContext=header.encryption_context,
        KeyId=edk.key_provider.key_info.decode(),
    )
    key: bytes = out["Plaintext"]
    return key


def test_no_plaintext_message_or_data_key_reaches_any_store_or_log(
    stack: None, clock: FakeClock, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str], json_logs: None,
) -> None:
    """Everything a deployment writes is scanned: the stores, every log record at DEBUG
    (as plain records and as Powertools' JSON lines) and the EMF metric lines, while the
    handler sends, batches, deduplicates, receives, fails, quarantines and deletes."""
    caplog.set_level(logging.DEBUG)
    recorder = Recorder(publish=True)
    fleet = Fleet(clock, metrics=recorder)
    sqs = sqs_client(Invocations(fleet.handler(), recorder))
    cmk = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    allow_kms_key(cmk)
    own = sqs.create_queue(QueueName="own-key", Attributes={"KmsMasterKeyId": cmk})["QueueUrl"]
    default = sqs.create_queue(QueueName="default-key")["QueueUrl"]
    fifo = sqs.create_queue(QueueName="dedup.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    attributes = {
        "secret": {"DataType": "String", "StringValue": SECRET_ATTRIBUTE},
        "blob": {"DataType": "Binary", "BinaryValue": SECRET_ATTRIBUTE.encode()},
    }
    large = SECRET_BODIES[0] * 20_000  # ~440 KB: stored in S3
    for url in (own, default):
        for body in [*SECRET_BODIES, large]:
            sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    sqs.send_message_batch(QueueUrl=default, Entries=[
        {"Id": str(n), "MessageBody": body, "MessageAttributes": attributes}
        for n, body in enumerate(SECRET_BODIES)])
    for _ in range(2):  # the second is a duplicate: the keyed hash of the body decides
        sqs.send_message(QueueUrl=fifo, MessageBody=SECRET_BODIES[1], MessageGroupId="g")

    stored = everything_stored()
    by_queue = {m["queue"]: plaintext_data_key(sealed_bytes(m["Body"]))
                for m in backing_messages()}
    data_keys = set(by_queue.values())
    assert len(data_keys) == 3  # one per queue

    handles = []
    received = sqs.receive_message(QueueUrl=own, MaxNumberOfMessages=1,
                                   MessageAttributeNames=["All"])["Messages"]
    assert received[0]["Body"] in [*SECRET_BODIES, large]
    handles.append(received[0]["ReceiptHandle"])
    sqs.change_message_visibility(QueueUrl=own, ReceiptHandle=handles[0], VisibilityTimeout=0)
    (deduplicated,) = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10)["Messages"]
    handles.append(deduplicated["ReceiptHandle"])
    sqs.delete_message(QueueUrl=fifo, ReceiptHandle=handles[-1])
    own_backing = backing_url_of("own-key")
    inline = next(m["Body"] for m in backing_messages()
                  if m["queue"] == own_backing and not m["Body"].startswith("{"))
    tampered = bytearray(base64.b64decode(inline))
    tampered[-20] ^= 0x01  # fails its integrity check: quarantined on receive
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=own_backing, MessageBody=base64.b64encode(bytes(tampered)).decode())
    while batch := sqs.receive_message(QueueUrl=own, MaxNumberOfMessages=10).get("Messages"):
        for m in batch:
            handles.append(m["ReceiptHandle"])
            sqs.delete_message(QueueUrl=own, ReceiptHandle=m["ReceiptHandle"])
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=own + "-gone", MessageBody=SECRET_BODIES[0])

    printed = capsys.readouterr().out
    blobs = [line for line in printed.splitlines() if '"_aws"' in line]
    json_lines = [json.loads(line) for line in printed.splitlines()
                  if line.startswith("{") and '"_aws"' not in line]
    # Not a vacuous scan: the request lines, the quarantine and the metrics are all there.
    actions = {line.get("action") for line in json_lines}
    assert {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage",
            "ChangeMessageVisibility"} <= actions
    assert logging.getLogger("sealq.messages").getEffectiveLevel() == logging.DEBUG
    assert any("quarantined" in line["message"] for line in json_lines)
    assert any('"QuarantinedMessages"' in blob for blob in blobs)
    assert any(r.name.startswith("sealq.") for r in caplog.records)

    core = fleet.cores[0]
    service_secrets = [core.service_secret(n) for n in ("receipt-handles",
                                                        "content-deduplication")]
    secrets = [s.encode() for s in [*SECRET_BODIES, SECRET_ATTRIBUTE]]
    for secret in secrets + list(data_keys):
        for form in forms(secret):
            assert form not in stored
    logged = "\n".join([caplog.text, printed]).encode()
    never_logged = [*secrets, *data_keys, *service_secrets, TEST_SECRET.encode(),
                    *(h.encode() for h in handles)]
    for secret in never_logged:
        for form in forms(secret):
            assert form not in logged


def test_a_stored_message_opens_with_the_plain_encryption_sdk_and_no_sealq_code(
    fleet: Fleet,
) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="dr")["QueueUrl"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody="recover me",
        MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}},
    )
    (message,) = backing_messages()
    sealed = sealed_bytes(message["Body"])
    header = header_of(sealed)
    (edk,) = header.encrypted_data_keys
    assert header.algorithm.name == "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"
    assert edk.key_provider.provider_id == "aws-kms"

    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[edk.key_provider.key_info.decode()],
        botocore_session=botocore.session.Session(),
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    plaintext, decrypted_header = client.decrypt(source=sealed, key_provider=provider)
    envelope = json.loads(plaintext)
    assert envelope["body"] == "recover me"
    assert envelope["attributes"]["k"]["StringValue"] == "v"
    assert decrypted_header.encryption_context["sealq:queue-arn"] == (
        "arn:aws:sqs:us-east-1:000000000000:dr"
    )


def test_a_queue_without_a_key_is_sealed_with_the_service_default_key(fleet: Fleet) -> None:
    sqs = fleet.sqs()
    kms = boto3.client("kms", region_name=REGION)
    default_arn = kms.describe_key(KeyId=settings.get().default_kms_key)["KeyMetadata"]["Arn"]
    own_arn = kms.create_key()["KeyMetadata"]["Arn"]
    allow_kms_key(own_arn)
    plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
    keyed = sqs.create_queue(QueueName="keyed", Attributes={"KmsMasterKeyId": own_arn})["QueueUrl"]
    sqs.send_message(QueueUrl=plain, MessageBody="a")
    sqs.send_message(QueueUrl=keyed, MessageBody="b")
    keys = {}
    for message in backing_messages():
        (edk,) = header_of(sealed_bytes(message["Body"])).encrypted_data_keys
        keys[message["queue"]] = edk.key_provider.key_info.decode()
    assert sorted(keys.values()) == sorted([default_arn, own_arn])
    attrs = sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=["All"])["Attributes"]
    assert attrs["SqsManagedSseEnabled"] == "true"


def test_ciphertext_copied_into_another_queue_does_not_open(fleet: Fleet) -> None:
    sqs = fleet.sqs()
    source = sqs.create_queue(QueueName="source")["QueueUrl"]
    target = sqs.create_queue(QueueName="target")["QueueUrl"]
    sqs.send_message(QueueUrl=source, MessageBody="for source only")
    (stolen,) = backing_messages()
    moto_sqs = boto3.client("sqs", region_name=REGION)
    backing_urls = [u for u in moto_sqs.list_queues(QueueNamePrefix="sealq-")["QueueUrls"]]
    target_backing = next(u for u in backing_urls if u != stolen["queue"])
    moto_sqs.send_message(QueueUrl=target_backing, MessageBody=stolen["Body"])

    assert "Messages" not in sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10)
    got = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["for source only"]


def test_no_data_key_encrypts_after_its_deadline(fleet: Fleet, clock: FakeClock) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(
        QueueName="short", Attributes={"KmsDataKeyReusePeriodSeconds": "60"}
    )["QueueUrl"]

    def edk_of_last_send(body: str) -> bytes:
        sqs.send_message(QueueUrl=url, MessageBody=body)
        for message in backing_messages():
            sealed = sealed_bytes(message["Body"])
            if json.loads(open_plain(sealed))["body"] == body:
                (edk,) = header_of(sealed).encrypted_data_keys
                return bytes(edk.encrypted_data_key)
        raise AssertionError("sent message not found")

    first = edk_of_last_send("t0")
    clock.advance(50)
    assert edk_of_last_send("t50") == first
    clock.advance(10)  # exactly the deadline: the key is no longer usable
    third = edk_of_last_send("t60")
    assert third != first
    assert fleet.kms.total("GenerateDataKey") == 2


def test_warm_path_makes_no_kms_call_for_a_thousand_messages(fleet: Fleet) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="busy")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="warm-up")
    warm = sqs.receive_message(QueueUrl=url)["Messages"][0]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=warm["ReceiptHandle"])
    before = sum(fleet.kms.calls.values())

    # Interleaved in batches of ten: moto's receive slows down with queue depth.
    received = 0
    for batch in range(100):
        entries = [{"Id": str(i), "MessageBody": f"m{batch}-{i}"} for i in range(10)]
        assert len(sqs.send_message_batch(QueueUrl=url, Entries=entries)["Successful"]) == 10
        got: list[dict[str, Any]] = []
        while len(got) < 10:
            more = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            assert more, "messages went missing"
            got.extend(more)
        assert sorted(m["Body"] for m in got) == sorted(e["MessageBody"] for e in entries)
        received += len(got)
        deleted = sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
            ],
        )
        assert len(deleted["Successful"]) == 10
    assert received == 1000
    assert sum(fleet.kms.calls.values()) == before
    # Over the whole run: one data key, one receipt-handle secret, no Decrypt at all.
    assert fleet.kms.total("GenerateDataKey") == 2
    assert fleet.kms.total("Decrypt") == 0


def test_twenty_cold_handler_containers_cause_exactly_one_generate_data_key(
    stack: None, clock: FakeClock
) -> None:
    fleet = Fleet(clock, key_service_containers=2)
    url = fleet.sqs().create_queue(QueueName="stampede")["QueueUrl"]
    clients = [fleet.sqs() for _ in range(20)]
    barrier = threading.Barrier(20)
    failures: list[BaseException] = []

    def send(index: int) -> None:
        try:
            barrier.wait()
            clients[index].send_message(QueueUrl=url, MessageBody=f"cold {index}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert fleet.kms.total("GenerateDataKey") == 1
    generator = next(iter(fleet.kms.by_container("GenerateDataKey")))
    assert generator not in fleet.kms.by_container("Decrypt")
    assert fleet.kms.total("Decrypt") <= 1
    edks = {bytes(header_of(sealed_bytes(m["Body"])).encrypted_data_keys.pop().encrypted_data_key)
            for m in backing_messages()}
    assert len(edks) == 1


def test_a_new_queue_key_takes_effect_within_the_queue_cache_ttl(
    fleet: Fleet, clock: FakeClock
) -> None:
    kms = boto3.client("kms", region_name=REGION)
    old_key = kms.create_key()["KeyMetadata"]["Arn"]
    new_key = kms.create_key()["KeyMetadata"]["Arn"]
    allow_kms_key(old_key, new_key)
    admin, producer = fleet.sqs(), fleet.sqs()
    url = admin.create_queue(QueueName="rotating", Attributes={"KmsMasterKeyId": old_key})[
        "QueueUrl"
    ]
    producer.send_message(QueueUrl=url, MessageBody="before")
    admin.set_queue_attributes(QueueUrl=url, Attributes={"KmsMasterKeyId": new_key})
    clock.advance(settings.get().queue_cache_ttl + 0.001)
    producer.send_message(QueueUrl=url, MessageBody="after")

    used = {}
    for message in backing_messages():
        sealed = sealed_bytes(message["Body"])
        body = json.loads(open_plain(sealed))["body"]
        used[body] = header_of(sealed).encrypted_data_keys.pop().key_provider.key_info.decode()
    assert used == {"before": old_key, "after": new_key}
    got = producer.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == ["after", "before"]


def test_forged_or_cross_queue_receipt_handles_are_rejected_and_delete_nothing(
    fleet: Fleet,
) -> None:
    sqs = fleet.sqs()
    a = sqs.create_queue(QueueName="a")["QueueUrl"]
    b = sqs.create_queue(QueueName="b")["QueueUrl"]
    sqs.send_message(QueueUrl=a, MessageBody="keep me")
    handle = sqs.receive_message(QueueUrl=a, VisibilityTimeout=0)["Messages"][0]["ReceiptHandle"]
    forged = handle[:-4] + ("AAAA" if not handle.endswith("AAAA") else "BBBB")
    for url, bad in [(a, forged), (b, handle), (a, "not-a-handle"), (a, handle + "x")]:
        with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=bad)
        with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=bad, VisibilityTimeout=5)
    got = sqs.receive_message(QueueUrl=a)["Messages"]
    assert [m["Body"] for m in got] == ["keep me"]


@pytest.mark.parametrize(
    ("kms_code", "sqs_error"),
    [
        ("DisabledException", "KmsDisabled"),
        ("NotFoundException", "KmsNotFound"),
        ("AccessDeniedException", "KmsAccessDenied"),
        ("KMSInvalidStateException", "KmsInvalidState"),
        ("ThrottlingException", "KmsThrottled"),
        ("InvalidKeyUsageException", "KmsInvalidKeyUsage"),
    ],
)
def test_kms_failures_become_sqs_kms_errors_and_store_nothing(
    fleet: Fleet, kms_code: str, sqs_error: str
) -> None:
    sqs = fleet.sqs()
    url = sqs.create_queue(QueueName="faulty")["QueueUrl"]
    fleet.kms_clients[0].meta.events.register(
        "before-call.kms.GenerateDataKey", kms_fault(kms_code)
    )
    with pytest.raises(getattr(sqs.exceptions, sqs_error)):
        sqs.send_message(QueueUrl=url, MessageBody="never stored")
    assert backing_messages() == []


def test_a_message_redriven_to_its_dead_letter_queue_opens_there_and_nowhere_else(
    fleet: Fleet,
) -> None:
    sqs = fleet.sqs()
    dlq = sqs.create_queue(QueueName="dead")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source = sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    sqs.send_message(QueueUrl=source, MessageBody="poison pill")

    first = sqs.receive_message(QueueUrl=source, VisibilityTimeout=0)["Messages"]
    assert [m["Body"] for m in first] == ["poison pill"]
    assert "Messages" not in sqs.receive_message(QueueUrl=source)  # moved on this receive
    redriven = sqs.receive_message(
        QueueUrl=dlq, VisibilityTimeout=0, MessageSystemAttributeNames=["All"]
    )["Messages"]
    assert [m["Body"] for m in redriven] == ["poison pill"]
    source_arn = "arn:aws:sqs:us-east-1:000000000000:work"
    assert redriven[0]["Attributes"]["DeadLetterQueueSourceArn"] == source_arn
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [source]
    attrs = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["RedrivePolicy"])
    assert json.loads(attrs["Attributes"]["RedrivePolicy"]) == json.loads(policy)

    # The same ciphertext copied into a queue the source does not redrive into stays shut.
    (stolen,) = backing_messages()
    boto3.client("sqs", region_name=REGION).send_message(
        QueueUrl=backing_url_of("other"), MessageBody=stolen["Body"]
    )
    assert "Messages" not in sqs.receive_message(QueueUrl=other, MaxNumberOfMessages=10)


@pytest.mark.parametrize(
    "policy",
    [
        "not json",
        json.dumps({"maxReceiveCount": 3}),
        json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:missing",
                    "maxReceiveCount": 3}),
        json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dead",
                    "maxReceiveCount": 0}),
    ],
)
def test_a_bad_redrive_policy_is_refused_and_changes_nothing(fleet: Fleet, policy: str) -> None:
    sqs = fleet.sqs()
    sqs.create_queue(QueueName="dead")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    with pytest.raises(sqs.exceptions.ClientError) as excinfo:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
    assert excinfo.value.response["Error"]["Code"] == "InvalidParameterValue"
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "RedrivePolicy" not in attrs
    with pytest.raises(sqs.exceptions.ClientError):
        sqs.create_queue(QueueName="work2", Attributes={"RedrivePolicy": policy})
    assert len(sqs.list_queues()["QueueUrls"]) == 2
