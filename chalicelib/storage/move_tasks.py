"""Message move tasks on DynamoDB, in the queue table (no table of their own).

Each source queue's tasks share one partition, ``move-task#<source ARN>``, which no
account id can equal, so queue listings never see them. Items: ``task#<id>`` per task
and ``active``, naming the source's one active task. A start claims ``active`` with a
conditional write first; a claim whose task is finished, or missing for over a minute
(a start that died between the two writes), is stale and may be taken over. A finished
task releases it. Only the ten most recent tasks are kept (ListMessageMoveTasks shows at most ten).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.storage.errors import Conflict
from chalicelib.storage.ports import RUNNING, TERMINAL_STATUSES, MoveTask
from chalicelib.storage.translate import translating

_SERVICE = "dynamodb"
_ACTIVE = "active"
KEEP = 10
# A claim whose task item is missing is a start in progress for this long, then stale.
CLAIM_GRACE = 60


def _partition(source_arn: str) -> str:
    return f"move-task#{source_arn}"


def _key(source_arn: str, name: str) -> dict[str, Any]:
    return {"account": {"S": _partition(source_arn)}, "name": {"S": name}}


def _task_name(task_id: str) -> str:
    return f"task#{task_id}"


def _item(task: MoveTask) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_key(task.source_arn, _task_name(task.task_id)),
        "task_id": {"S": task.task_id},
        "source_arn": {"S": task.source_arn},
        "started": {"N": str(task.started)},
        "to_move": {"N": str(task.to_move)},
        "status": {"S": task.status},
        "moved": {"N": str(task.moved)},
        "cancel_requested": {"BOOL": task.cancel_requested},
        "pending": {"L": [{"S": p} for p in task.pending]},
        "version": {"N": str(task.version)},
        "heartbeat": {"N": str(task.heartbeat)},
    }
    if task.destination_arn is not None:
        item["destination_arn"] = {"S": task.destination_arn}
    if task.rate is not None:
        item["rate"] = {"N": str(task.rate)}
    if task.failure is not None:
        item["failure"] = {"S": task.failure}
    return item


def _task(item: Mapping[str, Any]) -> MoveTask:
    return MoveTask(
        task_id=item["task_id"]["S"],
        source_arn=item["source_arn"]["S"],
        destination_arn=item["destination_arn"]["S"] if "destination_arn" in item else None,
        rate=int(item["rate"]["N"]) if "rate" in item else None,
        started=int(item["started"]["N"]),
        to_move=int(item["to_move"]["N"]),
        status=item["status"]["S"],
        moved=int(item["moved"]["N"]),
        failure=item["failure"]["S"] if "failure" in item else None,
        cancel_requested=item["cancel_requested"]["BOOL"],
        pending=tuple(p["S"] for p in item["pending"]["L"]),
        version=int(item["version"]["N"]),
        heartbeat=int(item["heartbeat"]["N"]),
    )


class DynamoMoveTaskStore:
    """The :class:`~chalicelib.storage.ports.MoveTaskStore` in the queue table."""

    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    def _claim(self, source_arn: str, task_id: str, claimed: int, stale: str | None) -> bool:
        if stale is None:
            condition = "attribute_not_exists(#n)"
            values: dict[str, Any] = {}
        else:
            condition = "task_id = :stale"
            values = {":stale": {"S": stale}}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": {**_key(source_arn, _ACTIVE), "task_id": {"S": task_id},
                     "claimed": {"N": str(claimed)}},
            "ConditionExpression": condition,
        }
        if stale is None:
            kwargs["ExpressionAttributeNames"] = {"#n": "name"}
        else:
            kwargs["ExpressionAttributeValues"] = values
        try:
            with translating(_SERVICE):
                self._ddb.put_item(**kwargs)
        except Conflict:
            return False
        return True

    def _active(self, source_arn: str) -> tuple[str, int] | None:
        """(task id, claimed at) of the source's claim."""
        with translating(_SERVICE):
            item = self._ddb.get_item(TableName=self._table, Key=_key(source_arn, _ACTIVE),
                                      ConsistentRead=True).get("Item")
        return (item["task_id"]["S"], int(item["claimed"]["N"])) if item else None

    def start(self, task: MoveTask) -> bool:
        now = task.started // 1000
        if not self._claim(task.source_arn, task.task_id, now, None):
            holder = self._active(task.source_arn)
            if holder is None:
                return False  # released meanwhile: the caller may try again
            current = self.get(task.source_arn, holder[0])
            if current is None and now - holder[1] < CLAIM_GRACE:
                return False  # another start is between its two writes
            if current is not None and current.status == RUNNING:
                return False
            if not self._claim(task.source_arn, task.task_id, now, holder[0]):
                return False
        with translating(_SERVICE):
            self._ddb.put_item(TableName=self._table, Item=_item(task))
        self._prune(task.source_arn)
        return True

    def _prune(self, source_arn: str) -> None:
        """Drop finished tasks beyond the ten most recent."""
        for old in self._all(source_arn)[KEEP:]:
            if old.status in TERMINAL_STATUSES:
                with translating(_SERVICE):
                    self._ddb.delete_item(TableName=self._table,
                                          Key=_key(source_arn, _task_name(old.task_id)))

    def get(self, source_arn: str, task_id: str) -> MoveTask | None:
        with translating(_SERVICE):
            item = self._ddb.get_item(TableName=self._table,
                                      Key=_key(source_arn, _task_name(task_id)),
                                      ConsistentRead=True).get("Item")
        return _task(item) if item else None

    def _all(self, source_arn: str) -> list[MoveTask]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "account = :p AND begins_with(#n, :t)",
            "ExpressionAttributeNames": {"#n": "name"},
            "ExpressionAttributeValues": {":p": {"S": _partition(source_arn)},
                                          ":t": {"S": "task#"}},
            "ConsistentRead": True,
        }
        found: list[MoveTask] = []
        while True:
            with translating(_SERVICE):
                page = self._ddb.query(**kwargs)
            found.extend(_task(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(found, key=lambda t: (t.started, t.task_id), reverse=True)

    def list(self, source_arn: str, limit: int) -> list[MoveTask]:
        return self._all(source_arn)[:limit]

    def save(self, task: MoveTask) -> MoveTask | None:
        names = {"#s": "status", "#v": "version"}
        values: dict[str, Any] = {
            ":s": {"S": task.status},
            ":m": {"N": str(task.moved)},
            ":p": {"L": [{"S": p} for p in task.pending]},
            ":v": {"N": str(task.version)},
            ":next": {"N": str(task.version + 1)},
            ":h": {"N": str(task.heartbeat)},
        }
        expression = "SET #s = :s, moved = :m, pending = :p, heartbeat = :h, #v = :next"
        if task.failure is not None:
            values[":f"] = {"S": task.failure}
            expression += ", failure = :f"
        try:
            with translating(_SERVICE):
                out = self._ddb.update_item(
                    TableName=self._table,
                    Key=_key(task.source_arn, _task_name(task.task_id)),
                    UpdateExpression=expression,
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
        except Conflict:
            return None
        stored = _task(out["Attributes"])
        if stored.status in TERMINAL_STATUSES:
            try:
                with translating(_SERVICE):
                    self._ddb.delete_item(
                        TableName=self._table, Key=_key(task.source_arn, _ACTIVE),
                        ConditionExpression="task_id = :t",
                        ExpressionAttributeValues={":t": {"S": task.task_id}},
                    )
            except Conflict:
                pass  # already released, or taken over
        return stored

    def request_cancel(self, source_arn: str, task_id: str) -> MoveTask | None:
        try:
            with translating(_SERVICE):
                out = self._ddb.update_item(
                    TableName=self._table, Key=_key(source_arn, _task_name(task_id)),
                    UpdateExpression="SET cancel_requested = :t",
                    ConditionExpression="#s = :r",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":t": {"BOOL": True}, ":r": {"S": RUNNING}},
                    ReturnValues="ALL_NEW",
                )
        except Conflict:
            return self.get(source_arn, task_id)
        return _task(out["Attributes"])
