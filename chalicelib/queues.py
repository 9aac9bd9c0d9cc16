"""The queue registry (DynamoDB): names, attributes, tags and each queue's backing store.

One item per queue, keyed by (account, name). Attributes are validated against
SQS's ranges before anything is written. Handlers cache records for
``queue_cache_ttl`` seconds (settings), so a change made through another
container — a new KmsMasterKeyId, say — takes effect within that time
(invariant 7).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from chalicelib import aws, settings
from chalicelib.clock import SYSTEM_CLOCK, Clock
from chalicelib.protocol import errors
from chalicelib.protocol.validation import validate_queue_name
from chalicelib.queue_attributes import (
    ALL_READABLE,
    INT_ATTRIBUTES,
    parse_arn,
    redrive_error,
    validate_attributes,
)
from chalicelib.storage import backing
from chalicelib.ttlcache import TTLCache


@dataclass(frozen=True)
class Queue:
    account: str
    name: str
    fifo: bool
    attributes: dict[str, str]
    backing_url: str
    backing_arn: str
    created: int
    modified: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:{settings.get().region}:{self.account}:{self.name}"

    def int_attribute(self, name: str) -> int:
        return int(self.attributes.get(name, INT_ATTRIBUTES[name][2]))

    @property
    def cmk(self) -> str:
        """The CMK that seals this queue's messages: its own, else the service default."""
        return self.attributes.get("KmsMasterKeyId") or settings.get().default_kms_key

    def url(self, base: str) -> str:
        return f"{base}/{self.account}/{self.name}"


def _from_item(item: dict[str, Any]) -> Queue:
    return Queue(
        account=item["account"]["S"],
        name=item["name"]["S"],
        fifo=item["fifo"]["BOOL"],
        attributes={k: v["S"] for k, v in item["attributes"]["M"].items()},
        backing_url=item["backing_url"]["S"],
        backing_arn=item["backing_arn"]["S"],
        created=int(item["created"]["N"]),
        modified=int(item["modified"]["N"]),
        tags={k: v["S"] for k, v in item.get("tags", {}).get("M", {}).items()},
    )


def _to_item(queue: Queue) -> dict[str, Any]:
    return {
        "account": {"S": queue.account},
        "name": {"S": queue.name},
        "fifo": {"BOOL": queue.fifo},
        "attributes": {"M": {k: {"S": v} for k, v in queue.attributes.items()}},
        "backing_url": {"S": queue.backing_url},
        "backing_arn": {"S": queue.backing_arn},
        "created": {"N": str(queue.created)},
        "modified": {"N": str(queue.modified)},
        "tags": {"M": {k: {"S": v} for k, v in queue.tags.items()}},
    }


class Registry:
    """Queue records in DynamoDB with a short-lived per-container cache."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, cache_ttl: float | None = None) -> None:
        self._clock = clock
        conf = settings.get()
        self._ttl = conf.queue_cache_ttl if cache_ttl is None else cache_ttl
        self._table = conf.queues_table
        self._cache: TTLCache[tuple[str, str], Queue] = TTLCache(4096, clock)

    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def get(self, account: str, name: str) -> Queue:
        """The queue, or QueueDoesNotExist."""
        cached = self._cache.get((account, name))
        if cached is not None:
            return cached
        item = self._ddb().get_item(
            TableName=self._table,
            Key={"account": {"S": account}, "name": {"S": name}},
            ConsistentRead=True,
        ).get("Item")
        if item is None:
            raise errors.queue_does_not_exist()
        queue = _from_item(item)
        if self._ttl > 0:
            self._cache.put((account, name), queue, self._clock.now() + self._ttl)
        return queue

    def create(
        self, account: str, name: str, raw_attributes: dict[str, str], tags: dict[str, str]
    ) -> Queue:
        """Create the queue, or return it when it exists with the same attributes."""
        fifo_flag = raw_attributes.get("FifoQueue", "false").strip().lower()
        if fifo_flag not in ("true", "false"):
            raise errors.invalid_attribute_value(
                "FifoQueue", "Invalid value for the parameter FifoQueue."
            )
        fifo = fifo_flag == "true"
        if name.endswith(".fifo") and "FifoQueue" not in raw_attributes:
            raise errors.invalid_parameter_value(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                "or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
        validate_queue_name(name, fifo)
        attributes = validate_attributes(raw_attributes, fifo=fifo, creating=True)
        try:
            existing: Queue | None = self.get_fresh(account, name)
        except errors.SqsError:
            existing = None
        if existing is not None:
            return self._same_or_conflict(existing, attributes)
        redrive = self._backing_redrive(account, fifo, attributes)
        if attributes.get("RedrivePolicy") == "":
            del attributes["RedrivePolicy"]
        backing_url, backing_arn = backing.create_queue(fifo, attributes, redrive or None)
        now = int(self._clock.now())
        queue = Queue(account, name, fifo, attributes, backing_url, backing_arn, now, now, tags)
        try:
            self._ddb().put_item(
                TableName=self._table,
                Item=_to_item(queue),
                ConditionExpression="attribute_not_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
            )
        except ClientError as err:
            backing.delete_queue(backing_url)  # lost a race: leave nothing behind
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return self._same_or_conflict(self.get_fresh(account, name), attributes)
        return queue

    def _same_or_conflict(self, existing: Queue, attributes: dict[str, str]) -> Queue:
        for key, value in attributes.items():
            current = existing.attributes.get(key)
            if current is None and key in INT_ATTRIBUTES:
                current = str(INT_ATTRIBUTES[key][2])
            if current != value:
                raise errors.queue_name_exists(key)
        return existing

    def _backing_redrive(
        self, account: str, fifo: bool, attributes: dict[str, str]
    ) -> dict[str, object] | None:
        """The backing RedrivePolicy for a (normalized) sealq one: None unchanged, {} removed.

        The backing queue moves messages to the dead-letter queue's backing queue
        itself; the sealed message keeps its source queue in its context, which
        the dead-letter queue accepts (see :meth:`redrives_into`).
        """
        if "RedrivePolicy" not in attributes:
            return None
        value = attributes["RedrivePolicy"]
        if value == "":
            return {}
        policy = json.loads(value)
        parsed = parse_arn(policy["deadLetterTargetArn"])
        target = None
        if parsed is not None and parsed[0] == account:
            try:
                target = self.get_fresh(*parsed)
            except errors.SqsError:
                target = None
        if target is None:
            raise redrive_error(value, "Dead letter target does not exist.")
        if target.fifo != fifo:
            raise redrive_error(
                value, "Dead-letter target owner queue type must match the source queue type."
            )
        return {"deadLetterTargetArn": target.backing_arn,
                "maxReceiveCount": policy["maxReceiveCount"]}

    def redrives_into(self, source_arn: str, queue: Queue) -> bool:
        """True when ``source_arn`` is a queue whose RedrivePolicy targets ``queue``."""
        parsed = parse_arn(source_arn)
        if parsed is None or parsed[0] != queue.account:
            return False
        try:
            source = self.get(*parsed)
        except errors.SqsError:
            return False
        policy = source.attributes.get("RedrivePolicy")
        return bool(policy) and json.loads(policy or "{}").get("deadLetterTargetArn") == queue.arn

    def accepts(self, queue: Queue) -> Callable[[str], bool]:
        """Which sealed messages may open in ``queue``: its own and those redriven into it."""
        return lambda arn: arn == queue.arn or self.redrives_into(arn, queue)

    def get_fresh(self, account: str, name: str) -> Queue:
        self._cache.pop((account, name))
        return self.get(account, name)

    def set_attributes(self, queue: Queue, raw_attributes: dict[str, str]) -> Queue:
        attributes = validate_attributes(raw_attributes, fifo=queue.fifo, creating=False)
        if "FifoQueue" in raw_attributes:
            raise errors.invalid_attribute_name("FifoQueue")
        merged = {**queue.attributes, **attributes}
        if merged.get("KmsMasterKeyId") and "SqsManagedSseEnabled" in attributes:
            if attributes["SqsManagedSseEnabled"] == "true":
                merged.pop("KmsMasterKeyId")
        if "KmsMasterKeyId" in attributes:
            merged.pop("SqsManagedSseEnabled", None)
        if merged.get("RedrivePolicy") == "":
            del merged["RedrivePolicy"]
        validate_attributes(merged, fifo=queue.fifo, creating=False)
        redrive = self._backing_redrive(queue.account, queue.fifo, attributes)
        backing.set_attributes(queue.backing_url, attributes, redrive)
        updated = replace(queue, attributes=merged, modified=int(self._clock.now()))
        self._put_existing(updated)
        return updated

    def purge(self, queue: Queue) -> None:
        try:
            backing.purge_queue(queue.backing_url)
        except ClientError as err:
            if "PurgeQueueInProgress" in err.response["Error"]["Code"]:
                raise errors.purge_queue_in_progress(queue.name) from None
            raise

    def set_tags(self, queue: Queue, tags: dict[str, str]) -> Queue:
        updated = replace(queue, tags=tags)
        self._put_existing(updated)
        return updated

    def _write_same_queue(self, queue: Queue, operation: str, **kwargs: Any) -> None:
        """Put or delete the record only while it is still this queue (same backing queue).

        A queue deleted, or deleted and re-created, meanwhile is QueueDoesNotExist.
        """
        try:
            getattr(self._ddb(), operation)(
                TableName=self._table,
                ConditionExpression="backing_url = :b",
                ExpressionAttributeValues={":b": {"S": queue.backing_url}},
                **kwargs,
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise errors.queue_does_not_exist() from None
            raise
        self._cache.pop((queue.account, queue.name))

    def _put_existing(self, queue: Queue) -> None:
        self._write_same_queue(queue, "put_item", Item=_to_item(queue))

    def delete(self, queue: Queue) -> None:
        """Remove the record first, then the backing queue: no window where a half-queue shows."""
        key = {"account": {"S": queue.account}, "name": {"S": queue.name}}
        self._write_same_queue(queue, "delete_item", Key=key)
        try:
            backing.delete_queue(queue.backing_url)
        except ClientError:
            pass  # already gone; the registry no longer points at it

    def list(
        self, account: str, prefix: str, limit: int | None, start_after: str | None
    ) -> tuple[list[Queue], str | None]:
        """Queues of ``account`` whose name starts with ``prefix``, in name order."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "account = :a"
            + (" AND begins_with(#n, :p)" if prefix else ""),
            "ExpressionAttributeValues": {":a": {"S": account}},
        }
        if prefix:
            kwargs["ExpressionAttributeNames"] = {"#n": "name"}
            kwargs["ExpressionAttributeValues"][":p"] = {"S": prefix}
        if start_after:
            kwargs["ExclusiveStartKey"] = {"account": {"S": account}, "name": {"S": start_after}}
        found: list[Queue] = []
        cap = limit if limit is not None else 1000
        while True:
            page = self._ddb().query(**kwargs)
            found.extend(_from_item(item) for item in page.get("Items", []))
            if len(found) >= cap or "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        more = len(found) > cap or (len(found) == cap and "LastEvaluatedKey" in page)
        found = found[:cap]
        next_name = found[-1].name if (limit is not None and more and found) else None
        return found, next_name

    def clear_cache(self) -> None:
        self._cache.clear()


def read_attributes(queue: Queue, names: list[str]) -> dict[str, str]:
    """GetQueueAttributes: the requested names (or All) with SQS's values."""
    wanted = set(ALL_READABLE) if "All" in names else set(names)
    for name in wanted:
        if name not in ALL_READABLE:
            raise errors.invalid_attribute_name(name)
    values: dict[str, str] = {"QueueArn": queue.arn}
    values["CreatedTimestamp"] = str(queue.created)
    values["LastModifiedTimestamp"] = str(queue.modified)
    for name, (_, _, default) in INT_ATTRIBUTES.items():
        values[name] = queue.attributes.get(name, str(default))
    if queue.attributes.get("KmsMasterKeyId"):
        values["KmsMasterKeyId"] = queue.attributes["KmsMasterKeyId"]
        values["SqsManagedSseEnabled"] = "false"
    else:
        values["SqsManagedSseEnabled"] = "true"
    for name in ("Policy", "RedrivePolicy"):
        if name in queue.attributes:
            values[name] = queue.attributes[name]
    if queue.fifo:
        values["FifoQueue"] = "true"
        values["ContentBasedDeduplication"] = queue.attributes.get(
            "ContentBasedDeduplication", "false"
        )
    if wanted & set(backing.COUNT_ATTRIBUTES):
        values.update(backing.counts(queue.backing_url))
    return {k: v for k, v in values.items() if k in wanted}
