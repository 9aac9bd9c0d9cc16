"""Failures of KMS, DynamoDB and requests: SQS codes out, nothing left behind, no secrets."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.clock import FakeClock
from chalicelib.keyservice.api import KEY_REFUSALS, REFUSAL_TTL
from chalicelib.storage.key_records import data_key_id
from tests.harness import REGION
from tests.key_services import (
    CMK,
    CONTEXT,
    QUEUE,
    b64,
    inject_kms_error,
    make_container,
    scan_keys_table,
)

# -- KMS faults ------------------------------------------------------------------------

KMS_FAULTS = [
    ("DisabledException", "KmsDisabled"),
    ("NotFoundException", "KmsNotFound"),
    ("AccessDeniedException", "KmsAccessDenied"),
    ("KMSInvalidStateException", "KmsInvalidState"),
    ("KeyUnavailableException", "KmsInvalidState"),
    ("ThrottlingException", "KmsThrottled"),
    ("LimitExceededException", "KmsThrottled"),
    ("InvalidKeyUsageException", "KmsInvalidKeyUsage"),
    ("IncorrectKeyException", "KmsInvalidKeyUsage"),
    ("KMSOptInRequired", "KmsOptInRequired"),
    ("DependencyTimeoutException", "ServiceUnavailable"),
    ("KMSInternalException", "ServiceUnavailable"),
    ("InvalidGrantTokenException", "InternalFailure"),
]


def data_key_request(reuse_period: int = 300, queue: str = QUEUE) -> dict[str, Any]:
    return {"op": "data_key", "queue_arn": queue, "cmk": CMK,
            "context": CONTEXT | {"sealq:queue": queue}, "reuse_period": reuse_period}


def valid_records(now: float) -> list[dict[str, Any]]:
    return [item for item in scan_keys_table()
            if "deadline" in item and float(item["deadline"]["N"]) > now]


def test_failed_generate_maps_the_error_and_leaves_no_record(
    stack: None, clock: FakeClock
) -> None:
    box = make_container(clock)
    for n, (kms_code, sqs_code) in enumerate(KMS_FAULTS):  # one moto stack for all: faster
        queue = f"{QUEUE}-{n}"
        undo = inject_kms_error(box.kms, "GenerateDataKey", kms_code)

        answer = box.core.handle(data_key_request(queue=queue))

        assert answer["error"]["code"] == sqs_code, kms_code
        assert "SECRET-DETAIL" not in answer["error"]["message"]
        record_ids = {item["id"]["S"] for item in scan_keys_table()}
        request = data_key_request(queue=queue)
        assert data_key_id(queue, CMK, request["context"]) not in record_ids, kms_code
        undo()
        if sqs_code in KEY_REFUSALS:  # a refused key is not asked again at once...
            assert box.core.handle(request)["error"]["code"] == sqs_code
            clock.advance(REFUSAL_TTL)  # ...only after the refusal window
        assert "ok" in box.core.handle(request), kms_code
        assert len(valid_records(clock.now())) == n + 1
    assert box.generates == 2 * len(KMS_FAULTS)


def test_failed_regeneration_leaves_only_the_expired_record(
    stack: None, clock: FakeClock
) -> None:
    box = make_container(clock)
    box.data_key(reuse_period=60)
    clock.advance(60)
    undo = inject_kms_error(box.kms, "GenerateDataKey", "ThrottlingException")

    assert box.core.handle(data_key_request(60))["error"]["code"] == "KmsThrottled"
    assert valid_records(clock.now()) == []
    assert "lease_owner" not in scan_keys_table()[0]  # released, not left to expire
    undo()
    assert "ok" in box.core.handle(data_key_request(60))
    assert len(valid_records(clock.now())) == 1


def test_failed_decrypt_of_the_record_maps_the_error(stack: None, clock: FakeClock) -> None:
    generator, reader = make_container(clock), make_container(clock)
    generator.data_key()
    undo = inject_kms_error(reader.kms, "Decrypt", "DisabledException")

    assert reader.core.handle(data_key_request())["error"]["code"] == "KmsDisabled"
    undo()
    decrypts = reader.decrypts
    assert reader.core.handle(data_key_request())["error"]["code"] == "KmsDisabled"  # cached
    assert reader.decrypts == decrypts  # the refusal was remembered: KMS not asked again
    clock.advance(REFUSAL_TTL)
    assert reader.core.handle(data_key_request())["ok"]["encrypted"] == b64(
        generator.data_key().encrypted
    )
    assert (generator.generates, reader.generates) == (1, 0)


def test_a_throttled_dynamodb_is_a_retryable_failure_with_a_generic_message(
    stack: None, clock: FakeClock
) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)

    def fail(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "SECRET-DETAIL"}}, "GetItem")

    ddb.meta.events.register("before-call.dynamodb.GetItem", fail)
    box = make_container(clock, ddb)

    error = box.core.handle(data_key_request())["error"]

    assert error["code"] == "ServiceUnavailable"
    assert "SECRET-DETAIL" not in error["message"]
    assert box.generates == 0


# -- the wire --------------------------------------------------------------------------

BAD_REQUESTS: list[Any] = [
    None,
    [],
    {},
    {"op": "rotate"},
    {"op": "data_key", "queue_arn": QUEUE, "cmk": CMK, "context": CONTEXT},
    data_key_request() | {"reuse_period": "300"},
    data_key_request() | {"reuse_period": True},
    data_key_request() | {"reuse_period": 59},
    data_key_request() | {"reuse_period": 86401},
    data_key_request() | {"queue_arn": ""},
    data_key_request() | {"context": [["a", "b"]]},
    data_key_request() | {"context": {"a": 1}},
    {"op": "decrypt_key", "encrypted": "not base64!", "cmk_arn": "arn", "context": {}},
    {"op": "decrypt_key", "encrypted": "", "cmk_arn": "arn", "context": {}},
    {"op": "service_secret", "name": 7},
]


def test_bad_requests_get_internal_failure_and_change_nothing(
    stack: None, clock: FakeClock
) -> None:
    box = make_container(clock)
    for payload in BAD_REQUESTS:
        answer = box.core.handle(payload)
        assert answer["error"]["code"] == "InternalFailure", payload
    assert scan_keys_table() == []
    assert box.calls == Counter()


def test_handle_answers_the_wire_format(stack: None, clock: FakeClock) -> None:
    box = make_container(clock)
    ok = box.core.handle(data_key_request())["ok"]
    assert set(ok) == {"plaintext", "encrypted", "cmk_arn", "deadline"}
    answer = box.core.handle({"op": "decrypt_key", "encrypted": ok["encrypted"],
                              "cmk_arn": ok["cmk_arn"], "context": CONTEXT})
    assert answer == {"ok": {"plaintext": ok["plaintext"]}}


def test_log_lines_carry_no_key_material(
    stack: None, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sealq")
    box = make_container(clock)
    key = box.data_key()
    undo = inject_kms_error(box.kms, "Decrypt", "InvalidCiphertextException")
    box.core.handle({"op": "decrypt_key", "encrypted": b64(b"x" * 40),
                     "cmk_arn": key.cmk_arn, "context": CONTEXT})
    undo()
    logged = "\n".join(r.getMessage() for r in caplog.records
                       if r.name.startswith("sealq.keyservice"))
    assert logged  # the generation and the failure were logged ...
    assert b64(key.plaintext) not in logged and "SECRET-DETAIL" not in logged  # ... safely
