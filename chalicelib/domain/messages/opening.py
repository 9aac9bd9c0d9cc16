"""Opening a sealed message in a queue: the queue's bindings handed to the sealer as values.

A message opens in the queue it was sealed for and in every dead-letter queue that
source redrove into (:attr:`~chalicelib.domain.queues.records.Queue.bindings`). A
source added since this container cached the record shows only in the stored record:
that one case reads it again, here, outside the encryption SDK.
"""

from __future__ import annotations

from chalicelib.crypto.sealing import NotBoundHere, Opened, Sealer
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.queues.redrive import Redrive


class Opener:
    def __init__(self, sealer: Sealer, redrive: Redrive) -> None:
        self._sealer = sealer
        self._redrive = redrive

    def open(self, queue: Queue, sealed: bytes) -> Opened:
        """The opened message; SealError (NotBoundHere for another queue's message) when it
        fails its checks, KeyServiceError as the key service reported it."""
        try:
            return self._sealer.open(sealed, bound_to=queue.bindings)
        except NotBoundHere as elsewhere:
            if not self._redrive.still_binds(queue, elsewhere.binding):
                raise
            return self._sealer.open(sealed, bound_to=queue.bindings | {elsewhere.binding})
