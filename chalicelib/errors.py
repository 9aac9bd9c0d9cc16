"""SQS errors with SQS's own codes, HTTP statuses and texts.

Every error sealq returns to a client is an :class:`SqsError` built by one of the
constructors below, so the wire shape (JSON ``__type``, ``x-amzn-query-error``,
status) is decided in one place. ``code`` is the modeled shape name that botocore
maps to ``client.exceptions.<code>``; ``query_code`` is the legacy query-protocol
code that clients see as ``Error.Code``; ``query_message`` the query protocol's own
text where AWS's differs from JSON 1.0's. Texts follow SQS where known (moto and
captured AWS responses); messages never carry plaintext or key material.
"""

from __future__ import annotations

import json
from typing import Any, Literal

Fault = Literal["Sender", "Receiver"]

SQS_NAMESPACE = "com.amazonaws.sqs"
# Errors raised by the AWS front door rather than by SQS itself live here.
CORAL_NAMESPACE = "com.amazon.coral.service"

class SqsError(Exception):
    """An error to return to the client; carries everything the wire needs."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        query_code: str | None = None,
        status: int = 400,
        fault: Fault = "Sender",
        namespace: str = SQS_NAMESPACE,
        query_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.query_code = query_code or code
        self.message = message
        self.query_message = query_message or message
        self.status = status
        self.fault: Fault = fault
        self.namespace = namespace

    @property
    def type(self) -> str:
        """The JSON ``__type``: ``<namespace>#<code>``."""
        return f"{self.namespace}#{self.code}"

    def batch_entry(self, entry_id: str) -> dict[str, object]:
        """This error as a ``BatchResultErrorEntry`` (batch results carry the legacy code)."""
        return {
            "Id": entry_id,
            "SenderFault": self.fault == "Sender",
            "Code": self.query_code,
            "Message": self.message,
        }

    def __repr__(self) -> str:
        return f"SqsError({self.code!r}, {self.message!r}, query_code={self.query_code!r})"


def _legacy(name: str) -> str:
    return f"AWS.SimpleQueueService.{name}"


# -- queues -----------------------------------------------------------------


def queue_does_not_exist() -> SqsError:
    """AWS's texts differ by protocol (recorded): the query protocol's names its WSDL."""
    return SqsError(
        "QueueDoesNotExist",
        "The specified queue does not exist.",
        query_code=_legacy("NonExistentQueue"),
        query_message="The specified queue does not exist for this wsdl version.",
    )


def queue_name_exists(attribute: str | None = None) -> SqsError:
    """CreateQueue on an existing name with different attributes."""
    message = (
        f"A queue already exists with the same name and a different value for attribute {attribute}"
        if attribute
        else "A queue already exists with the same name and different attributes."
    )
    return SqsError("QueueNameExists", message, query_code="QueueAlreadyExists")


def queue_deleted_recently() -> SqsError:
    return SqsError(
        "QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another "
        "with the same name.",
        query_code=_legacy("QueueDeletedRecently"),
    )


def purge_queue_in_progress(queue_name: str) -> SqsError:
    return SqsError(
        "PurgeQueueInProgress",
        f"Only one PurgeQueue operation on {queue_name} is allowed every 60 seconds.",
        query_code=_legacy("PurgeQueueInProgress"),
        status=403,
    )


def invalid_attribute_name(name: str, message: str | None = None) -> SqsError:
    return SqsError("InvalidAttributeName", message or f"Unknown Attribute {name}.")


def invalid_attribute_value(name: str, message: str | None = None) -> SqsError:
    return SqsError("InvalidAttributeValue", message or f"Invalid value for the parameter {name}.")


# -- parameters (not modeled: plain ClientError with the legacy code) --------


def invalid_parameter_value(message: str) -> SqsError:
    return SqsError("InvalidParameterValueException", message, query_code="InvalidParameterValue")


def _show(value: Any) -> str:
    """The value as AWS echoes it: whole, however long."""
    return value if isinstance(value, str) else json.dumps(value)


def invalid_value(name: str, value: Any, reason: str) -> SqsError:
    """SQS's usual text: ``Value X for parameter Y is invalid. Reason: ...``."""
    return invalid_parameter_value(
        f"Value {_show(value)} for parameter {name} is invalid. Reason: {reason}"
    )


def missing_parameter(name: str) -> SqsError:
    """JSON 1.0's ``__type`` as recorded on AWS; the query protocol's legacy code."""
    return SqsError(
        "MissingRequiredParameterException",
        f"The request must contain the parameter {name}.",
        query_code="MissingParameter",
    )


def invalid_message_contents(message: str) -> SqsError:
    return SqsError("InvalidMessageContents", message)


def over_limit(message: str) -> SqsError:
    return SqsError("OverLimit", message, status=403)


def unsupported_operation(message: str) -> SqsError:
    return SqsError("UnsupportedOperation", message, query_code=_legacy("UnsupportedOperation"))


# -- messages and receipt handles --------------------------------------------


def receipt_handle_is_invalid(handle: str | None = None) -> SqsError:
    message = (
        f'The input receipt handle "{handle}" is not a valid receipt handle.'
        if handle is not None
        else "The input receipt handle is invalid."
    )
    return SqsError("ReceiptHandleIsInvalid", message, status=404)


def message_not_inflight() -> SqsError:
    return SqsError(
        "MessageNotInflight",
        "The message referred to isn't in flight.",
        query_code=_legacy("MessageNotInflight"),
    )


def invalid_id_format() -> SqsError:
    return SqsError(
        "InvalidIdFormat", "The specified receipt handle isn't valid for the current version."
    )


# -- batches -------------------------------------------------------------------


def empty_batch_request(operation: str = "SendMessageBatch") -> SqsError:
    """``operation`` is the batch action, e.g. ``DeleteMessageBatch``."""
    return SqsError(
        "EmptyBatchRequest",
        f"There should be at least one {operation}RequestEntry in the request.",
        query_code=_legacy("EmptyBatchRequest"),
    )


def too_many_entries_in_batch_request(count: int) -> SqsError:
    return SqsError(
        "TooManyEntriesInBatchRequest",
        f"Maximum number of entries per request are 10. You have sent {count}.",
        query_code=_legacy("TooManyEntriesInBatchRequest"),
    )


def invalid_batch_entry_id() -> SqsError:
    return SqsError(
        "InvalidBatchEntryId",
        "A batch entry id can only contain alphanumeric characters, hyphens and "
        "underscores. It can be at most 80 letters long.",
        query_code=_legacy("InvalidBatchEntryId"),
    )


def batch_entry_ids_not_distinct(entry_id: str) -> SqsError:
    return SqsError(
        "BatchEntryIdsNotDistinct",
        f"Id {entry_id} repeated.",
        query_code=_legacy("BatchEntryIdsNotDistinct"),
    )


def batch_request_too_long(length: int, limit: int) -> SqsError:
    return SqsError(
        "BatchRequestTooLong",
        f"Batch requests cannot be longer than {limit} bytes. You have sent {length} bytes.",
        query_code=_legacy("BatchRequestTooLong"),
    )


# -- throttling, addressing, other modeled shapes ------------------------------


def request_throttled() -> SqsError:
    return SqsError("RequestThrottled", "Rate exceeded.", status=403)


def service_unavailable() -> SqsError:
    """A transient backend fault (throttled, 5xx, timeout): retryable, never a 5xx.

    ``RequestThrottled`` with status 403 is the modeled SQS error that every SDK's
    retry logic backs off on (botocore's legacy and standard modes, the Java and Go
    SDKs' throttling lists), so clients retry it as they would an SQS 5xx.
    """
    return SqsError(
        "RequestThrottled",
        "The service is temporarily unavailable. Retry the request.",
        status=403,
        fault="Receiver",
    )


def invalid_address(message: str = "The address is not valid for this endpoint.") -> SqsError:
    return SqsError("InvalidAddress", message, status=404)


def invalid_security(
    message: str = "The request was not made over HTTPS or did not use SigV4 for signing.",
) -> SqsError:
    return SqsError("InvalidSecurity", message, status=403)


def resource_not_found(message: str = "The specified resource does not exist.") -> SqsError:
    return SqsError("ResourceNotFoundException", message, status=404)


# -- KMS -------------------------------------------------------------------------

# SQS shape -> (legacy code, HTTP status).
KMS_ERRORS: dict[str, tuple[str, int]] = {
    "KmsDisabled": ("KMS.DisabledException", 400),
    "KmsNotFound": ("KMS.NotFoundException", 400),
    "KmsAccessDenied": ("KMS.AccessDeniedException", 400),
    "KmsInvalidState": ("KMS.InvalidStateException", 400),
    "KmsThrottled": ("KMS.ThrottlingException", 400),
    "KmsInvalidKeyUsage": ("KMS.InvalidKeyUsageException", 400),
    "KmsOptInRequired": ("KMS.OptInRequired", 403),
}

def kms_error(code: str, message: str) -> SqsError:
    """SQS's KMS error ``code`` (the shape, ``KmsDisabled``, or its legacy code,
    ``KMS.DisabledException``); anything else is not the caller's fault and becomes
    :func:`internal_failure`. KMS's own codes are mapped where KMS is called
    (``chalicelib.keyservice.kms``), never here."""
    shape = code if code in KMS_ERRORS else next(
        (name for name, (legacy, _) in KMS_ERRORS.items() if legacy == code), None)
    if shape is None:
        return internal_failure()
    legacy, status = KMS_ERRORS[shape]
    return SqsError(shape, message, query_code=legacy, status=status)


# -- the front door: protocol, authentication, internal -------------------------


def unknown_operation(target: str | None) -> SqsError:
    """No or unknown ``X-Amz-Target``; the legacy code is query's ``InvalidAction``."""
    action = (target or "").removeprefix("AmazonSQS.")
    message = (
        f"The action {action} is not valid for this endpoint."
        if action
        else "The request must contain the parameter Action."
    )
    return SqsError(
        "UnknownOperationException",
        message,
        query_code="InvalidAction",
        namespace=CORAL_NAMESPACE,
    )


def malformed_query_string(message: str) -> SqsError:
    """A query-protocol request whose parameters do not parse (AWS common errors: 404)."""
    return SqsError(
        "MalformedQueryString",
        message,
        query_code="MalformedQueryString",
        status=404,
        namespace=CORAL_NAMESPACE,
    )


def serialization_error(message: str = "Request body is not valid JSON.") -> SqsError:
    return SqsError("SerializationException", message, namespace=CORAL_NAMESPACE)


def access_denied(resource: str | None = None) -> SqsError:
    return access_denied_message(
        f"Access to the resource {resource} is denied."
        if resource
        else "Access to the resource is denied."
    )


def access_denied_message(message: str) -> SqsError:
    """``AccessDenied`` (HTTP 403) with ``message``: SQS answers a refused queue access so."""
    return SqsError(
        "AccessDeniedException",
        message,
        query_code="AccessDenied",
        status=403,
        namespace=CORAL_NAMESPACE,
    )


def invalid_client_token_id() -> SqsError:
    return SqsError(
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        query_code="InvalidClientTokenId",
        status=403,
        namespace=CORAL_NAMESPACE,
    )


def signature_does_not_match(message: str | None = None) -> SqsError:
    return SqsError(
        "InvalidSignatureException",
        message
        or "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details.",
        query_code="SignatureDoesNotMatch",
        status=403,
        namespace=CORAL_NAMESPACE,
    )


def incomplete_signature(message: str) -> SqsError:
    return SqsError(
        "IncompleteSignatureException",
        message,
        query_code="IncompleteSignature",
        namespace=CORAL_NAMESPACE,
    )


def missing_authentication_token() -> SqsError:
    return SqsError(
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        query_code="MissingAuthenticationToken",
        status=403,
        namespace=CORAL_NAMESPACE,
    )


def request_expired() -> SqsError:
    return SqsError(
        "RequestExpired",
        "Request has expired.",
        query_code="RequestExpired",
        namespace=CORAL_NAMESPACE,
    )


def internal_failure() -> SqsError:
    """A 500 with a generic text: details go to the log, never to the client."""
    return SqsError(
        "InternalFailure",
        "The request processing has failed because of an unknown error, exception or failure.",
        status=500,
        fault="Receiver",
        namespace=CORAL_NAMESPACE,
    )
