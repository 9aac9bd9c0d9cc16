"""botocore's failures turned into sealq's storage errors, in one place.

Every adapter (and the Lambda invokes of the key-service transport and of move
tasks) runs its botocore calls inside :func:`translating`; what leaves is a
:class:`~chalicelib.storage.errors.StorageError` whose kind says what the caller may
do (retry, treat as gone, give up), never a ``ClientError``.

What is transient is botocore's own judgement (its standard retry mode's checkers for
throttling and transient faults, a 5xx status), plus the 5xx codes below that a
service names in a body botocore saw without its status (an injected fault, a
response parsed from a batch).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

from chalicelib.storage.errors import (
    Conflict,
    Denied,
    Gone,
    InvalidReceipt,
    NotInflight,
    PurgeInProgress,
    Refused,
    StorageError,
    Transient,
)

# Server-side faults by name (KMS, SQS, DynamoDB and Lambda each use one of them):
# botocore judges these by their 5xx status, which a code alone does not carry.
_SERVER_FAULTS = frozenset({
    "InternalError", "InternalFailure", "InternalServerError", "ServiceUnavailable",
    "ServiceUnavailableException", "InternalServiceError", "KMSInternalException",
    "DependencyTimeoutException", "KMS.ThrottlingException",
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



class _Status:
    """The part of an HTTP response botocore's checkers read."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def _status(response: Any) -> int:
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status if isinstance(status, int) else 0


@functools.cache
def _checkers() -> tuple[Any, ...]:
    """botocore's standard-mode checkers, imported on first use: importing
    ``botocore.retries`` ahead of boto3 slows the key service's cold start by ~30 ms."""
    from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

    return ThrottledRetryableChecker(), TransientRetryableChecker()


def _transient(code: str, status: int) -> bool:
    from botocore.retries.standard import RetryContext

    if code in _SERVER_FAULTS or status >= 500:
        return True
    context = RetryContext(
        attempt_number=1,
        parsed_response={"Error": {"Code": code}},
        http_response=_Status(status) if status else None,
    )
    return any(checker.is_retryable(context) for checker in _checkers())


def classify(service: str, code: str, status: int = 0) -> StorageError:
    """The storage error for AWS error ``code`` (with its HTTP status, when known)."""
    if code in _CONFLICT:
        return Conflict(service, code)
    if _transient(code, status):
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
        return classify(service, code, _status(err.response))
    if isinstance(err, ConnectionError | HTTPClientError | ReadTimeoutError):
        return Transient(service, type(err).__name__)
    return StorageError(service, type(err).__name__)


@contextmanager
def translating(service: str) -> Iterator[None]:
    """Run botocore calls; their failures leave as :class:`StorageError`, never ClientError."""
    try:
        yield
    except (ClientError, BotoCoreError) as err:
        raise translate(service, err) from None


def is_transient(err: BaseException) -> bool:
    """True for a failure that a retry may cure (a botocore one, or a storage error)."""
    if isinstance(err, StorageError):
        return isinstance(err, Transient)
    if isinstance(err, ClientError | BotoCoreError):
        return isinstance(translate("aws", err), Transient)
    return False
