"""The queue table's DynamoDB adapter: one item per queue, keyed by (account, name).

Changes are attribute-level ``UpdateItem`` calls conditioned on the backing queue
and the record's version, so two containers changing one queue never erase each
other's work (invariant 12): a stale writer gets False, reads again and retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.storage.errors import Conflict
from chalicelib.storage.ports import Change, QueueRecord
from chalicelib.storage.translate import translating

_SERVICE = "dynamodb"


def _strings(value: Mapping[str, str]) -> dict[str, Any]:
    return {"M": {k: {"S": v} for k, v in value.items()}}


def record_from_item(item: Mapping[str, Any]) -> QueueRecord:
    return QueueRecord(
        account=item["account"]["S"],
        name=item["name"]["S"],
        fifo=item["fifo"]["BOOL"],
        attributes={k: v["S"] for k, v in item["attributes"]["M"].items()},
        backing_url=item["backing_url"]["S"],
        backing_arn=item["backing_arn"]["S"],
        created=int(item["created"]["N"]),
        modified=int(item["modified"]["N"]),
        tags={k: v["S"] for k, v in item.get("tags", {}).get("M", {}).items()},
        version=int(item["version"]["N"]) if "version" in item else 0,
        queue_id=item["queue_id"]["S"] if "queue_id" in item else "",
        sources={k: v["S"] for k, v in item.get("sources", {}).get("M", {}).items()},
        trigger=item.get("trigger", {}).get("S", ""),
    )


def item_from_record(record: QueueRecord) -> dict[str, Any]:
    return {
        "account": {"S": record.account},
        "name": {"S": record.name},
        "fifo": {"BOOL": record.fifo},
        "attributes": _strings(record.attributes),
        "backing_url": {"S": record.backing_url},
        "backing_arn": {"S": record.backing_arn},
        "created": {"N": str(record.created)},
        "modified": {"N": str(record.modified)},
        "tags": _strings(record.tags),
        "version": {"N": str(record.version)},
        "queue_id": {"S": record.queue_id},
        "sources": _strings(record.sources),
        **({"trigger": {"S": record.trigger}} if record.trigger else {}),
    }


def _key(account: str, name: str) -> dict[str, Any]:
    return {"account": {"S": account}, "name": {"S": name}}


def _index_key(backing_arn: str) -> dict[str, Any]:
    # A partition no account id can be, so queue listings never see it.
    return _key(f"backing#{backing_arn}", "queue")


class DynamoQueueTable:
    """The :class:`~chalicelib.storage.ports.QueueTable` on a DynamoDB table."""

    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    def get(self, account: str, name: str) -> QueueRecord | None:
        with translating(_SERVICE):
            item = self._ddb.get_item(
                TableName=self._table, Key=_key(account, name), ConsistentRead=True
            ).get("Item")
        return record_from_item(item) if item else None

    def create(self, record: QueueRecord) -> bool:
        try:
            with translating(_SERVICE):
                self._ddb.put_item(
                    TableName=self._table,
                    Item=item_from_record(record),
                    ConditionExpression="attribute_not_exists(#n)",
                    ExpressionAttributeNames={"#n": "name"},
                )
        except Conflict:
            return False
        return True

    def update(self, record: QueueRecord, change: Change) -> bool:
        names: dict[str, str] = {"#v": "version"}
        values: dict[str, Any] = {
            ":b": {"S": record.backing_url},
            ":next": {"N": str(record.version + 1)},
        }
        sets = ["#v = :next"]

        def path(map_name: str, key: str) -> str:
            placeholder = f"#k{len(names)}"
            names[placeholder] = key
            return f"{map_name}.{placeholder}"

        def value(text: str) -> str:
            placeholder = f":x{len(values)}"
            values[placeholder] = {"S": text}
            return placeholder

        sets += [f"{path('attributes', k)} = {value(v)}" for k, v in change.set_attributes.items()]
        sets += [f"{path('tags', k)} = {value(v)}" for k, v in change.set_tags.items()]
        sets += [f"{path('sources', k)} = {value(v)}" for k, v in change.add_sources.items()]
        removes = [path("attributes", k) for k in change.remove_attributes]
        removes += [path("tags", k) for k in change.remove_tags]
        if change.modified is not None:
            values[":m"] = {"N": str(change.modified)}
            sets.append("modified = :m")
        if change.trigger is not None:  # TRIGGER is a DynamoDB reserved word
            names["#tr"] = "trigger"
            if change.trigger:
                sets.append(f"#tr = {value(change.trigger)}")
            else:
                removes.append("#tr")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        if record.version:
            values[":v"] = {"N": str(record.version)}
            condition = "backing_url = :b AND #v = :v"
        else:
            condition = "backing_url = :b AND attribute_not_exists(#v)"
        try:
            with translating(_SERVICE):
                self._ddb.update_item(
                    TableName=self._table,
                    Key=_key(record.account, record.name),
                    UpdateExpression=expression,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
        except Conflict:
            return False
        return True

    def delete(self, record: QueueRecord) -> bool:
        try:
            with translating(_SERVICE):
                self._ddb.delete_item(
                    TableName=self._table,
                    Key=_key(record.account, record.name),
                    ConditionExpression="backing_url = :b",
                    ExpressionAttributeValues={":b": {"S": record.backing_url}},
                )
        except Conflict:
            return False
        return True

    def list(
        self, account: str, prefix: str, limit: int, start_after: str | None
    ) -> tuple[list[QueueRecord], bool]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "account = :a"
            + (" AND begins_with(#n, :p)" if prefix else ""),
            "ExpressionAttributeValues": {":a": {"S": account}},
            "ConsistentRead": True,
        }
        if prefix:
            kwargs["ExpressionAttributeNames"] = {"#n": "name"}
            kwargs["ExpressionAttributeValues"][":p"] = {"S": prefix}
        if start_after:
            kwargs["ExclusiveStartKey"] = _key(account, start_after)
        found: list[QueueRecord] = []
        while True:
            kwargs["Limit"] = limit + 1 - len(found)
            with translating(_SERVICE):
                page = self._ddb.query(**kwargs)
            found.extend(record_from_item(item) for item in page.get("Items", []))
            if len(found) > limit or "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit], len(found) > limit

    def locate(self, backing_arn: str) -> tuple[str, str] | None:
        with translating(_SERVICE):
            item = self._ddb.get_item(TableName=self._table, Key=_index_key(backing_arn),
                                      ConsistentRead=True).get("Item")
        return (item["queue_account"]["S"], item["queue_name"]["S"]) if item else None

    def index(self, backing_arn: str, account: str, name: str) -> None:
        with translating(_SERVICE):
            self._ddb.put_item(TableName=self._table, Item={
                **_index_key(backing_arn), "queue_account": {"S": account},
                "queue_name": {"S": name}})

    def unindex(self, backing_arn: str) -> None:
        with translating(_SERVICE):
            self._ddb.delete_item(TableName=self._table, Key=_index_key(backing_arn))
