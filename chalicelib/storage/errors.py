"""sealq's own storage errors: the only failures that leave a storage adapter.

Adapters turn every botocore failure into one of these
(:mod:`chalicelib.storage.translate`), so nothing above them inspects AWS error
codes or imports botocore. ``code`` is AWS's error code, kept for log lines only;
AWS's message text is dropped (it can quote request values, message bodies among them).
"""

from __future__ import annotations


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
