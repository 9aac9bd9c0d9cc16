"""The accounts table's DynamoDB adapter: one item per account, one per access key.

Items are keyed by ``id``: ``account#<12 digits>`` (name, created_at, kms_keys)
and ``key#<access key id>`` (account, status, created_at, secret: the sealed
envelope, never the secret itself). New items are conditional puts, so an id is
never reused; failures leave as :class:`chalicelib.storage.errors.StorageError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.storage.errors import Conflict
from chalicelib.storage.ports import AccessKey, Account
from chalicelib.storage.translate import translating

_SERVICE = "dynamodb"
_ACCOUNT = "account#"
_KEY = "key#"


def _account(item: Mapping[str, Any]) -> Account:
    return Account(
        account_id=item["id"]["S"][len(_ACCOUNT):],
        name=item["name"]["S"],
        created_at=float(item["created_at"]["N"]),
        kms_keys=frozenset(item.get("kms_keys", {}).get("SS", [])),
    )


def _key(item: Mapping[str, Any]) -> AccessKey:
    return AccessKey(
        access_key_id=item["id"]["S"][len(_KEY):],
        account=item["account"]["S"],
        status=item["status"]["S"],
        created_at=float(item["created_at"]["N"]),
        sealed_secret=bytes(item["secret"]["B"]),
    )


class DynamoAccountStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._ddb = dynamodb
        self._table = table

    def _conditional(self, call: Callable[..., Any], **request: Any) -> bool:
        """One conditional write; False when its condition failed."""
        try:
            with translating(_SERVICE):
                call(TableName=self._table, **request)
        except Conflict:
            return False
        return True

    def _put_new(self, item: dict[str, Any]) -> bool:
        return self._conditional(self._ddb.put_item, Item=item,
                                 ConditionExpression="attribute_not_exists(id)")

    def _update(self, record_id: str, expression: str, **request: Any) -> bool:
        return self._conditional(
            self._ddb.update_item, Key={"id": {"S": record_id}}, UpdateExpression=expression,
            ConditionExpression="attribute_exists(id)", **request)

    def _get(self, record_id: str) -> dict[str, Any] | None:
        with translating(_SERVICE):
            resp = self._ddb.get_item(TableName=self._table, Key={"id": {"S": record_id}},
                                      ConsistentRead=True)
        item: dict[str, Any] | None = resp.get("Item")
        return item

    def _scan(self, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        with translating(_SERVICE):
            pages = self._ddb.get_paginator("scan").paginate(
                TableName=self._table, FilterExpression="begins_with(id, :p)",
                ExpressionAttributeValues={":p": {"S": prefix}}, ConsistentRead=True,
            )
            for page in pages:
                items.extend(page.get("Items", []))
        return items

    def put_account(self, account: Account) -> bool:
        item: dict[str, Any] = {
            "id": {"S": _ACCOUNT + account.account_id}, "name": {"S": account.name},
            "created_at": {"N": repr(float(account.created_at))},
        }
        if account.kms_keys:
            item["kms_keys"] = {"SS": sorted(account.kms_keys)}
        return self._put_new(item)

    def get_account(self, account_id: str) -> Account | None:
        item = self._get(_ACCOUNT + account_id)
        return _account(item) if item else None

    def list_accounts(self) -> list[Account]:
        return [_account(item) for item in self._scan(_ACCOUNT)]

    def set_kms_key(self, account_id: str, cmk: str, allowed: bool) -> bool:
        verb = "ADD" if allowed else "DELETE"
        return self._update(_ACCOUNT + account_id, f"{verb} kms_keys :k",
                            ExpressionAttributeValues={":k": {"SS": [cmk]}})

    def put_key(self, key: AccessKey) -> bool:
        return self._put_new({
            "id": {"S": _KEY + key.access_key_id}, "account": {"S": key.account},
            "status": {"S": key.status}, "created_at": {"N": repr(float(key.created_at))},
            "secret": {"B": key.sealed_secret},
        })

    def get_key(self, access_key_id: str) -> AccessKey | None:
        item = self._get(_KEY + access_key_id)
        return _key(item) if item else None

    def list_keys(self, account_id: str) -> list[AccessKey]:
        return [k for k in map(_key, self._scan(_KEY)) if k.account == account_id]

    def set_key_status(self, access_key_id: str, status: str) -> bool:
        return self._update(_KEY + access_key_id, "SET #s = :s",
                            ExpressionAttributeNames={"#s": "status"},
                            ExpressionAttributeValues={":s": {"S": status}})

    def delete_key(self, access_key_id: str) -> bool:
        return self._conditional(self._ddb.delete_item, Key={"id": {"S": _KEY + access_key_id}},
                                 ConditionExpression="attribute_exists(id)")
