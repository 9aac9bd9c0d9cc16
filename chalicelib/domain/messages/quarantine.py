"""The quarantine: messages that fail their integrity checks leave their queue for good.

A record holds the message exactly as it was stored (sealed, or a pointer to its
sealed body), so nothing in it is plaintext. It is never delivered, never blocks a
FIFO group and never comes back (invariant 11); the operator counts and purges it.
"""

from __future__ import annotations

import json
import logging

from chalicelib.clock import Clock
from chalicelib.domain.queues.records import Queue
from chalicelib.observability.metrics import NO_METRICS, QUARANTINED_MESSAGES, Metrics
from chalicelib.storage.ports import BackingMessage, MessageStore, QuarantineStore

log = logging.getLogger("sealq.messages")


class Quarantine:
    def __init__(self, store: MessageStore, records: QuarantineStore, *, clock: Clock,
                 metrics: Metrics = NO_METRICS) -> None:
        self._store = store
        self._records = records
        self._clock = clock
        self._metrics = metrics

    def put(self, queue: Queue, item: BackingMessage, reason: str) -> None:
        """Move a message that failed its integrity checks out of its queue, for good.

        If the record cannot be written the error propagates (the message is handed
        back and tried again); a record written whose message cannot be removed is
        logged (the message is quarantined again when it shows).
        """
        record = json.dumps({
            "queue_arn": queue.arn,
            "message_id": item.message_id,
            "quarantined_at": int(self._clock.now()),
            "reason": reason,
            "stored_body": item.body,
            "attributes": dict(item.attributes),
        }).encode()
        self._records.put(queue.quarantine_id, item.message_id, record)
        self._metrics.add(QUARANTINED_MESSAGES)
        refused = self._store.delete_batch(queue.backing_url, {"q": item.receipt_handle})
        if refused:
            log.warning("quarantined message %s could not be removed: %s", item.message_id,
                        refused["q"].code)
        log.warning("message %s of %s quarantined: %s", item.message_id, queue.arn, reason)
