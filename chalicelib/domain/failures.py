"""The SQS error a client sees for a failure below the domain: storage or key service.

One map for the whole handler, used at the error boundary and wherever an
operation needs a more specific answer first. Log lines carry the error class and
AWS's code, never AWS's message text (it can quote request values).
"""

from __future__ import annotations

import logging

from chalicelib import errors
from chalicelib.keyservice.api import KMS_ERROR_CODES, UNAVAILABLE, KeyServiceError
from chalicelib.storage.errors import Denied, Gone, PurgeInProgress, StorageError, Transient

log = logging.getLogger("sealq.failures")


def storage_error(err: StorageError, queue_name: str = "") -> errors.SqsError:
    """A storage failure as SQS would report it.

    Transient faults are retryable (never a 5xx); ``InternalFailure`` is left for
    sealq's own bugs and its deployment's (a missing table, a denied role).
    """
    kind = type(err).__name__
    if isinstance(err, Transient):
        log.warning("backend %s unavailable: %s", err.service, err.code)
        return errors.service_unavailable()
    if isinstance(err, Gone):
        return errors.queue_does_not_exist()
    if isinstance(err, PurgeInProgress):
        return errors.purge_queue_in_progress(queue_name)
    if isinstance(err, Denied):
        # The deployment's own IAM is wrong: the client is not at fault, nor is a retry
        # going to help; the operator finds the code in the log.
        log.error("backend %s refused sealq's credentials: %s", err.service, err.code)
        return errors.internal_failure()
    log.error("backend %s failed: %s %s", err.service, kind, err.code)
    return errors.internal_failure()


def key_service_error(err: KeyServiceError) -> errors.SqsError:
    """A key-service failure as SQS's KMS error, or retryable when it is transient."""
    if err.code in KMS_ERROR_CODES:
        return errors.kms_error(err.code, err.message)
    if err.code == UNAVAILABLE:
        log.warning("key service unavailable")
        return errors.service_unavailable()
    log.error("key service failed: %s", err.code)
    return errors.internal_failure()


def access_key_error(err: StorageError | KeyServiceError) -> errors.SqsError:
    """Access keys could not be read (their table, or the key service opening a secret):
    the request is refused, retryably when the fault is transient, never served."""
    if isinstance(err, Transient) or (isinstance(err, KeyServiceError) and err.code == UNAVAILABLE):
        log.warning("access keys unavailable: %s %s", type(err).__name__, err.code)
        return errors.service_unavailable()
    log.error("access keys cannot be read: %s %s", type(err).__name__, err.code)
    return errors.internal_failure()
