"""sealq's own storage errors: the only failures that leave a storage adapter.

Adapters turn every botocore ``ClientError`` and ``BotoCoreError`` into one of
these with :func:`translate`, so nothing above them inspects AWS error codes.
``code`` is AWS's error code, kept for log lines only; AWS's message text is
dropped (it can quote request values, message bodies among them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

# botocore's standard retry mode treats these as throttling; SQS, S3, DynamoDB,
# KMS and Lambda use one or another of them.
_THROTTLED = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
    "InternalServerError", "ServiceUnavailable", "ServiceUnavailableException",
    "InternalServiceError", "KMSInternalException", "DependencyTimeoutException",
    "EC2ThrottledException", "KMS.ThrottlingException",
})
_GONE = frozenset({
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NoSuchKey",
    "NoSuchBucket", "404", "NotFound",
})
_DENIED = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
    "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
    "ExpiredTokenException", "AuthFailure", "SignatureDoesNotMatch", "403",
    "KMS.AccessDeniedException",
})
_INVALID_RECEIPT = frozenset({"ReceiptHandleIsInvalid", "InvalidIdFormat"})
_NOT_INFLIGHT = frozenset({"AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"})
_PURGE_IN_PROGRESS = frozenset({"AWS.SimpleQueueService.PurgeQueueInProgress",
                                "PurgeQueueInProgress"})
_CONFLICT = frozenset({"ConditionalCheckFailedException", "TransactionConflictException"})


class StorageError(Exception):
    """A backend call failed in a way none of the subclasses describes (a sealq bug)."""

    def __init__(self, service: str, code: str) -> None:
        super().__init__(f"{service} {code}")
        self.service = service
        self.code = code


class Transient(StorageError):
    """Throttled, a 5xx, a timeout or a dropped connection: the same call may succeed later."""


class Gone(StorageError):
    """The queue, object or record is not there (deleted, expired, never existed)."""


class Denied(StorageError):
    """The backend refused sealq's own credentials (an operator's IAM problem)."""


class InvalidReceipt(StorageError):
    """The backing store does not know the receipt handle (malformed or from elsewhere)."""


class NotInflight(StorageError):
    """The message of a receipt handle is not in flight any more."""


class Refused(StorageError):
    """The backend refused the values of a request (e.g. an expired or deleted receipt)."""


class Conflict(StorageError):
    """A conditional write found the record changed: read again and retry, or give up."""


class PurgeInProgress(StorageError):
    """A purge of the queue ran within the last 60 seconds."""


def _status(err: ClientError) -> int:
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status if isinstance(status, int) else 0


def classify(service: str, code: str, status: int = 0) -> StorageError:
    """The storage error for AWS error ``code`` (with its HTTP status, when known)."""
    if code in _CONFLICT:
        return Conflict(service, code)
    if code in _THROTTLED or status >= 500:
        return Transient(service, code)
    if code in _GONE:
        return Gone(service, code)
    if code in _DENIED:
        return Denied(service, code)
    if code in _INVALID_RECEIPT:
        return InvalidReceipt(service, code)
    if code in _NOT_INFLIGHT:
        return NotInflight(service, code)
    if code in _PURGE_IN_PROGRESS:
        return PurgeInProgress(service, code)
    if code in ("InvalidParameterValue", "ValidationException"):
        return Refused(service, code)
    return StorageError(service, code)


def translate(service: str, err: ClientError | BotoCoreError) -> StorageError:
    """The storage error for an exception a botocore client raised."""
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", "") or "")
        return classify(service, code, _status(err))
    if isinstance(err, ConnectionError | HTTPClientError | ReadTimeoutError):
        return Transient(service, type(err).__name__)
    return StorageError(service, type(err).__name__)


@contextmanager
def translating(service: str) -> Iterator[None]:
    """Run a botocore call; its failures leave as :class:`StorageError`, never ClientError."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise translate(service, err) from None


def is_transient(err: BaseException) -> bool:
    """True for a botocore failure that a retry may cure."""
    if isinstance(err, StorageError):
        return isinstance(err, Transient)
    if isinstance(err, ClientError | BotoCoreError):
        return isinstance(translate("aws", err), Transient)
    return False
