"""Acting on a received message by its receipt handle: delete it, change its visibility.

A handle given to a client is sealed and bound to its queue (invariant 8): it is
checked before anything is touched, so a forged or cross-queue handle deletes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from chalicelib import errors
from chalicelib.crypto import handles
from chalicelib.domain.failures import storage_error
from chalicelib.domain.messages.stored import StoredMessages
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.results import BatchFailure
from chalicelib.storage.errors import InvalidReceipt, NotInflight, Refused, StorageError


def handle_error(err: StorageError, handle: str, operation: str) -> errors.SqsError:
    """What SQS answers when its store refuses a receipt handle."""
    if isinstance(err, InvalidReceipt):
        return errors.receipt_handle_is_invalid(handle)
    if isinstance(err, NotInflight):
        return errors.message_not_inflight()
    if isinstance(err, Refused):
        # Real SQS: a deleted message's handle (ChangeMessageVisibility), an expired
        # FIFO handle (DeleteMessage).
        reason = (
            "Message does not exist or is not available for visibility timeout change."
            if operation == "ChangeMessageVisibility"
            else "The receipt handle has expired."
        )
        return errors.invalid_parameter_value(
            f"Value {handle} for parameter ReceiptHandle is invalid. Reason: {reason}"
        )
    return storage_error(err)


class Receipts:
    def __init__(self, stored: StoredMessages, secret: Callable[[str], bytes]) -> None:
        self._stored = stored
        self._secret = secret

    def _receipt(self, queue: Queue, handle: str) -> handles.Receipt:
        try:
            return handles.verify(self._secret("receipt-handles"), queue.arn, handle,
                                  queue.queue_id)
        except handles.InvalidHandle:
            raise errors.receipt_handle_is_invalid(handle) from None

    def delete(self, queue: Queue, handle: str) -> None:
        failed = self.delete_many(queue, [("0", handle)])
        if failed:
            raise failed[0].error

    def delete_many(self, queue: Queue, entries: list[tuple[str, str]]) -> list[BatchFailure]:
        """Delete by receipt handle in one backing call; the entries that failed."""
        failed: list[BatchFailure] = []
        receipts: dict[str, handles.Receipt] = {}
        given = dict(entries)
        for entry_id, handle in entries:
            try:
                receipts[entry_id] = self._receipt(queue, handle)
            except errors.SqsError as err:
                failed.append(BatchFailure(entry_id, err))
        if not receipts:
            return failed
        try:
            refused = self._stored.store.delete_batch(
                queue.backing_url, {i: r.backing_handle for i, r in receipts.items()})
        except StorageError as err:
            raise storage_error(err) from None
        for entry_id, receipt in receipts.items():
            if entry_id in refused:
                failed.append(BatchFailure(entry_id, handle_error(
                    refused[entry_id], given[entry_id], "DeleteMessage")))
            elif receipt.payload is not None:
                # After the message is gone: a failure here must not fail the delete
                # (the client would retry a delete that happened).
                self._stored.drop_payload(receipt.payload, "a deleted message")
        return failed

    def change_visibility(self, queue: Queue, handle: str, timeout: int) -> None:
        receipt = self._receipt(queue, handle)
        try:
            self._stored.store.change_visibility(queue.backing_url, receipt.backing_handle,
                                                 timeout)
        except StorageError as err:
            raise handle_error(err, handle, "ChangeMessageVisibility") from None
