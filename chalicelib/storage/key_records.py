"""DynamoDB key records: the fleet-wide current data key per (queue, CMK), and secrets.

A data-key record holds only the *encrypted* DEK, the CMK ARN it is encrypted
under, when it was generated and its deadline, plus a lease (owner, expiry) that
elects the one container allowed to call GenerateDataKey. Every write is
conditional, so concurrent containers can never overwrite each other's key.
Plaintext never passes through this module. Failures leave as
:class:`~chalicelib.storage.errors.StorageError`; a lost condition is False.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.storage.errors import Conflict
from chalicelib.storage.translate import translating

_SERVICE = "dynamodb"


@dataclass(frozen=True)
class KeyRecord:
    """An encrypted data key as stored; ``deadline`` is epoch seconds."""

    encrypted: bytes
    cmk_arn: str
    generated_at: float
    deadline: float

    def effective_deadline(self, reuse_period: float) -> float:
        """The deadline under the caller's reuse period, so shortening it takes effect."""
        return min(self.deadline, self.generated_at + reuse_period)


@dataclass(frozen=True)
class RecordState:
    """What a consistent read found: the key (if any) and the lease expiry (if any)."""

    key: KeyRecord | None
    lease_until: float | None

    def lease_live(self, now: float) -> bool:
        return self.lease_until is not None and self.lease_until > now


# A KmsMasterKeyId is any text the account may use; one this long goes into the record's
# key by its hash, so the key stays within DynamoDB's 2,048 bytes (shorter ones, every
# id, ARN and alias KMS can name, as they are).
MAX_CMK_IN_ID = 1024


def data_key_id(queue_arn: str, cmk: str, context: Mapping[str, str]) -> str:
    """The record of the current data key of (queue, CMK) under one encryption context."""
    digest = hashlib.sha256(json.dumps(sorted(context.items())).encode()).hexdigest()[:32]
    if len(cmk.encode("utf-8", "surrogatepass")) > MAX_CMK_IN_ID:
        cmk = "sha256:" + hashlib.sha256(cmk.encode("utf-8", "surrogatepass")).hexdigest()
    return f"dek#{queue_arn}#{cmk}#{digest}"


def secret_id(name: str) -> str:
    return f"secret#{name}"


def _num(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def _key_from_item(item: dict[str, Any], time_attr: str) -> KeyRecord | None:
    if "encrypted" not in item or "cmk_arn" not in item or time_attr not in item:
        return None
    generated_at = float(item[time_attr]["N"])
    return KeyRecord(
        encrypted=bytes(item["encrypted"]["B"]),
        cmk_arn=item["cmk_arn"]["S"],
        generated_at=generated_at,
        deadline=float(item["deadline"]["N"]) if "deadline" in item else float("inf"),
    )


class KeyRecords:
    """Conditional reads and writes of the keys table (hash key ``id``)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def _get(self, record_id: str) -> dict[str, Any]:
        with translating(_SERVICE):
            resp = self._ddb.get_item(
                TableName=self._table, Key={"id": {"S": record_id}}, ConsistentRead=True
            )
        item: dict[str, Any] = resp.get("Item") or {}
        return item

    def read(self, record_id: str) -> RecordState:
        """The data-key record and its lease, read consistently."""
        item = self._get(record_id)
        lease = float(item["lease_until"]["N"]) if "lease_until" in item else None
        return RecordState(key=_key_from_item(item, "generated_at"), lease_until=lease)

    def take_lease(
        self,
        record_id: str,
        owner: str,
        *,
        now: float,
        until: float,
        valid_after: float,
        reuse_period: float,
    ) -> bool:
        """Become the one generator: only if no key valid past ``valid_after`` and no live lease.

        "Valid" uses the effective deadline, min(deadline, generated_at + reuse_period),
        written as two comparisons since DynamoDB conditions have no ``min``.
        """
        try:
            with translating(_SERVICE):
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"id": {"S": record_id}},
                    UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                    ConditionExpression=(
                        "(attribute_not_exists(deadline) OR deadline <= :valid_after"
                        " OR generated_at <= :generated_before)"
                        " AND (attribute_not_exists(lease_until) OR lease_until <= :now)"
                    ),
                    ExpressionAttributeValues={
                        ":owner": {"S": owner},
                        ":until": _num(until),
                        ":valid_after": _num(valid_after),
                        ":generated_before": _num(valid_after - reuse_period),
                        ":now": _num(now),
                    },
                )
        except Conflict:
            return False
        return True

    def complete(self, record_id: str, owner: str, key: KeyRecord) -> bool:
        """Store the new key and drop the lease, only if ``owner`` still holds it."""
        try:
            with translating(_SERVICE):
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"id": {"S": record_id}},
                    UpdateExpression=(
                        "SET encrypted = :encrypted, cmk_arn = :cmk_arn,"
                        " generated_at = :generated_at, deadline = :deadline"
                        " REMOVE lease_owner, lease_until"
                    ),
                    ConditionExpression="lease_owner = :owner",
                    ExpressionAttributeValues={
                        ":encrypted": {"B": key.encrypted},
                        ":cmk_arn": {"S": key.cmk_arn},
                        ":generated_at": _num(key.generated_at),
                        ":deadline": _num(key.deadline),
                        ":owner": {"S": owner},
                    },
                )
        except Conflict:
            return False
        return True

    def release(self, record_id: str, owner: str) -> None:
        """Give up a lease after a failed generation; a lease-only item is deleted.

        Raises on DynamoDB errors; callers may ignore them, as the lease then expires.
        """
        values = {":owner": {"S": owner}}
        try:
            with translating(_SERVICE):
                self._ddb.delete_item(
                    TableName=self._table,
                    Key={"id": {"S": record_id}},
                    ConditionExpression="lease_owner = :owner AND attribute_not_exists(encrypted)",
                    ExpressionAttributeValues=values,
                )
            return
        except Conflict:
            pass
        try:
            with translating(_SERVICE):
                self._ddb.update_item(
                    TableName=self._table,
                    Key={"id": {"S": record_id}},
                    UpdateExpression="REMOVE lease_owner, lease_until",
                    ConditionExpression="lease_owner = :owner",
                    ExpressionAttributeValues=values,
                )
        except Conflict:
            pass

    def read_secret(self, record_id: str) -> KeyRecord | None:
        """A secret's encrypted record (no deadline: secrets live as long as the deployment)."""
        return _key_from_item(self._get(record_id), "created_at")

    def put_secret(self, record_id: str, encrypted: bytes, cmk_arn: str, now: float) -> bool:
        """Store a secret unless one exists; False means another container won."""
        try:
            with translating(_SERVICE):
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        "id": {"S": record_id},
                        "encrypted": {"B": encrypted},
                        "cmk_arn": {"S": cmk_arn},
                        "created_at": _num(now),
                    },
                    ConditionExpression="attribute_not_exists(id)",
                )
        except Conflict:
            return False
        return True
