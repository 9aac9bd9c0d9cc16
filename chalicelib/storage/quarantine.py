"""The quarantine's S3 adapter: ``quarantine/<queue id>/<message id>`` in the payload bucket.

A quarantined record holds the message exactly as it was stored (sealed, or a
pointer to its sealed body), so nothing here is ever plaintext. The bucket's
lifecycle rule removes records after 15 days, longer than any queue's retention.
"""

from __future__ import annotations

from typing import Any

from chalicelib.storage.translate import translating

PREFIX = "quarantine/"
_SERVICE = "s3"


class S3QuarantineStore:
    """The :class:`~chalicelib.storage.ports.QuarantineStore` on an S3 bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def _prefix(self, queue_id: str) -> str:
        return f"{PREFIX}{queue_id}/"

    def put(self, queue_id: str, message_id: str, record: bytes) -> None:
        with translating(_SERVICE):
            self._s3.put_object(
                Bucket=self._bucket, Key=self._prefix(queue_id) + message_id, Body=record
            )

    def _keys(self, queue_id: str) -> list[str]:
        keys: list[str] = []
        with translating(_SERVICE):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=self._prefix(queue_id)
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def list(self, queue_id: str) -> list[str]:
        return [key.rsplit("/", 1)[1] for key in self._keys(queue_id)]

    def purge(self, queue_id: str) -> int:
        keys = self._keys(queue_id)
        with translating(_SERVICE):
            for start in range(0, len(keys), 1000):
                self._s3.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]],
                            "Quiet": True},
                )
        return len(keys)
