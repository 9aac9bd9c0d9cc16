"""Every error constructor, checked through a real botocore SQS client.

A ``before-send`` hook answers each call with the response ``json10.failure``
builds, so these tests exercise botocore's own parser and error factory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib import errors
from chalicelib.aws import service_model
from chalicelib.errors import SqsError
from chalicelib.protocol import json10
from tests.wire_helpers import answer_with

CONSTRUCTORS: list[tuple[str, Callable[[], SqsError]]] = [
    ("queue_does_not_exist", errors.queue_does_not_exist),
    ("queue_name_exists", lambda: errors.queue_name_exists("VisibilityTimeout")),
    ("queue_deleted_recently", errors.queue_deleted_recently),
    ("purge_queue_in_progress", lambda: errors.purge_queue_in_progress("q")),
    ("invalid_attribute_name", lambda: errors.invalid_attribute_name("Bogus")),
    ("invalid_attribute_value", lambda: errors.invalid_attribute_value("DelaySeconds")),
    ("invalid_parameter_value", lambda: errors.invalid_parameter_value("bad")),
    ("missing_parameter", lambda: errors.missing_parameter("QueueUrl")),
    ("invalid_message_contents", lambda: errors.invalid_message_contents("bad char")),
    ("over_limit", lambda: errors.over_limit("8 Actions were found, maximum allowed is 7.")),
    ("unsupported_operation", lambda: errors.unsupported_operation("nope")),
    ("receipt_handle_is_invalid", lambda: errors.receipt_handle_is_invalid("abc")),
    ("message_not_inflight", errors.message_not_inflight),
    ("invalid_id_format", errors.invalid_id_format),
    ("empty_batch_request", lambda: errors.empty_batch_request("DeleteMessageBatch")),
    ("too_many_entries", lambda: errors.too_many_entries_in_batch_request(11)),
    ("invalid_batch_entry_id", errors.invalid_batch_entry_id),
    ("batch_entry_ids_not_distinct", lambda: errors.batch_entry_ids_not_distinct("a")),
    ("batch_request_too_long", lambda: errors.batch_request_too_long(2_000_000, 1_048_576)),
    ("request_throttled", errors.request_throttled),
    ("invalid_address", errors.invalid_address),
    ("invalid_security", errors.invalid_security),
    ("resource_not_found", errors.resource_not_found),
    *[
        (f"kms_error_{shape}", lambda shape=shape: errors.kms_error(shape, "kms said no"))
        for shape in errors.KMS_ERRORS
    ],
    ("unknown_operation", lambda: errors.unknown_operation("AmazonSQS.Bogus")),
    ("serialization_error", errors.serialization_error),
    ("access_denied", lambda: errors.access_denied("https://sealq.test/0/q")),
    ("invalid_client_token_id", errors.invalid_client_token_id),
    ("signature_does_not_match", errors.signature_does_not_match),
    ("incomplete_signature", lambda: errors.incomplete_signature("no Credential")),
    ("missing_authentication_token", errors.missing_authentication_token),
    ("request_expired", errors.request_expired),
    ("internal_failure", errors.internal_failure),
]


@pytest.mark.parametrize(("label", "make"), CONSTRUCTORS, ids=[c[0] for c in CONSTRUCTORS])
def test_botocore_raises_the_modeled_exception_with_the_legacy_code(
    sqs: Any, label: str, make: Callable[[], SqsError]
) -> None:
    err = make()
    answer_with(sqs, json10.failure(err, "req-1"))
    with pytest.raises(ClientError) as caught:
        sqs.get_queue_url(QueueName="x")
    response = caught.value.response
    assert response["Error"]["Code"] == err.query_code
    assert response["Error"]["Message"] == err.message
    assert response["Error"]["Type"] == err.fault
    assert response["ResponseMetadata"]["HTTPStatusCode"] == err.status
    assert response["ResponseMetadata"]["RequestId"] == "req-1"
    if err.code in service_model.error_shapes():
        assert type(caught.value) is getattr(sqs.exceptions, err.code)
    else:
        assert type(caught.value) is ClientError


def test_every_modeled_exception_has_a_constructor() -> None:
    built = {make().code for _, make in CONSTRUCTORS}
    assert service_model.error_shapes() <= built


def test_queue_does_not_exist_carries_sqs_text_and_legacy_code(sqs: Any) -> None:
    answer_with(sqs, json10.failure(errors.queue_does_not_exist(), "r"))
    with pytest.raises(sqs.exceptions.QueueDoesNotExist) as caught:
        sqs.get_queue_url(QueueName="x")
    assert caught.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert caught.value.response["Error"]["Message"] == "The specified queue does not exist."


def test_failure_response_has_the_json_shape_and_query_error_header() -> None:
    resp = json10.failure(errors.queue_name_exists("DelaySeconds"), "rid")
    assert resp.status == 400
    assert resp.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert resp.headers["x-amzn-RequestId"] == "rid"
    assert resp.headers["x-amzn-query-error"] == "QueueAlreadyExists;Sender"
    assert json.loads(resp.body) == {
        "__type": "com.amazonaws.sqs#QueueNameExists",
        "message": "A queue already exists with the same name and a different value for "
        "attribute DelaySeconds",
    }


def test_internal_failure_is_a_receiver_fault_500_with_generic_text() -> None:
    err = errors.internal_failure()
    assert (err.status, err.fault) == (500, "Receiver")
    assert "Traceback" not in err.message


@pytest.mark.parametrize(
    ("code", "shape"),
    [
        ("KmsDisabled", "KmsDisabled"),
        ("KMS.DisabledException", "KmsDisabled"),
        ("KMS.OptInRequired", "KmsOptInRequired"),
        ("KmsThrottled", "KmsThrottled"),
    ],
)
def test_kms_error_accepts_the_sqs_shape_or_its_legacy_code(code: str, shape: str) -> None:
    err = errors.kms_error(code, "m")
    assert err.code == shape
    assert err.query_code == errors.KMS_ERRORS[shape][0]


def test_kms_opt_in_required_is_a_403() -> None:
    assert errors.kms_error("KmsOptInRequired", "m").status == 403


def test_a_code_that_is_not_sqss_kms_error_becomes_internal_failure() -> None:
    err = errors.kms_error("DisabledException", "boom")  # KMS's own name: mapped elsewhere
    assert err.code == "InternalFailure"
    assert "boom" not in err.message


def test_batch_entry_uses_the_legacy_code_and_sender_fault() -> None:
    entry = errors.receipt_handle_is_invalid("h").batch_entry("e1")
    assert entry == {
        "Id": "e1",
        "SenderFault": True,
        "Code": "ReceiptHandleIsInvalid",
        "Message": 'The input receipt handle "h" is not a valid receipt handle.',
    }
    assert errors.internal_failure().batch_entry("e2")["SenderFault"] is False


def test_empty_batch_request_names_the_operations_entry_type() -> None:
    assert errors.empty_batch_request("ChangeMessageVisibilityBatch").message == (
        "There should be at least one ChangeMessageVisibilityBatchRequestEntry in the request."
    )
