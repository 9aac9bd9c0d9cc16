"""The queue actions: create, find, list, attributes, permissions, tags, delete, purge."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib import errors
from chalicelib.auth import access, policy
from chalicelib.domain.context import Caller, Handler, Services, registrar
from chalicelib.domain.params import opt_int, opt_str, opt_str_list, opt_str_map, require_str
from chalicelib.domain.queues import attributes
from chalicelib.domain.queues.attributes import MAX_POLICY_BYTES
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.queues.rules import validate_tag_keys, validate_tags
from chalicelib.domain.results import QueueAttributes, QueueTags, QueueUrl, QueueUrls
from chalicelib.errors import invalid_value
from chalicelib.storage.ports import COUNT_ATTRIBUTES

ACTIONS: dict[str, Handler] = {}
action = registrar(ACTIONS)

# AddPermission (SQS API reference): a label is 1-80 of [A-Za-z0-9_-]; at most seven
# actions per statement; principals are 12-digit account ids.
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,80}", re.ASCII)
_ACCOUNT_ID = re.compile(r"[0-9]{12}", re.ASCII)
MAX_PERMISSION_ACTIONS = 7


@action("CreateQueue")
def create_queue(svc: Services, caller: Caller, params: dict[str, Any]) -> QueueUrl:
    name = require_str(params, "QueueName")
    attributes = opt_str_map(params, "Attributes") or {}
    tags = validate_tags(params.get("tags"), queue_name=name)
    queue = svc.registry.create(caller.account, name, attributes, tags)
    return QueueUrl(queue.url(caller.base_url))


@action("GetQueueUrl")
def get_queue_url(svc: Services, caller: Caller, params: dict[str, Any]) -> QueueUrl:
    name = require_str(params, "QueueName")
    owner = opt_str(params, "QueueOwnerAWSAccountId") or caller.account
    if owner != caller.account and (owner, name) != caller.granted:
        raise errors.queue_does_not_exist()
    return QueueUrl(svc.registry.get(owner, name).url(caller.base_url))


@action("ListQueues")
def list_queues(svc: Services, caller: Caller, params: dict[str, Any]) -> QueueUrls:
    prefix = opt_str(params, "QueueNamePrefix") or ""
    limit = opt_int(params, "MaxResults", 1, 1000)
    token = opt_str(params, "NextToken")
    start_after = None
    if token:
        try:
            start_after = base64.urlsafe_b64decode(token.encode()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise invalid_value("NextToken", token, "Invalid NextToken.") from None
    found, more = svc.registry.list_queues(caller.account, prefix, limit or 1000, start_after)
    next_token = None
    if limit is not None and more and found:
        next_token = base64.urlsafe_b64encode(found[-1].name.encode()).decode("ascii")
    return QueueUrls([q.url(caller.base_url) for q in found], next_token)


@action("GetQueueAttributes")
def get_queue_attributes(svc: Services, caller: Caller, params: dict[str, Any]
                         ) -> QueueAttributes:
    queue = svc.queue(caller, params)
    names = opt_str_list(params, "AttributeNames") or []
    return QueueAttributes(read_attributes(queue, names, lambda: svc.registry.counts(queue)))


@action("SetQueueAttributes")
def set_queue_attributes(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    queue = svc.queue(caller, params)
    attributes = opt_str_map(params, "Attributes")
    if attributes is None:
        raise errors.missing_parameter("Attributes")
    svc.registry.set_attributes(queue, attributes)


@action("AddPermission")
def add_permission(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    queue = svc.queue(caller, params)
    label = _label(params)
    accounts = opt_str_list(params, "AWSAccountIds") or []
    actions = opt_str_list(params, "Actions") or []
    if not accounts or any(not _ACCOUNT_ID.fullmatch(a) for a in accounts):
        raise invalid_value("PrincipalId", f"[{', '.join(accounts)}]", "Unable to verify.")
    if not actions:
        raise errors.missing_parameter("Actions")
    if len(actions) > MAX_PERMISSION_ACTIONS:
        raise errors.over_limit(
            f"{len(actions)} Actions were found, maximum allowed is {MAX_PERMISSION_ACTIONS}.")
    for name in actions:
        if name != "*" and name not in access.GRANTABLE:
            reason = ("Only the queue owner is allowed to invoke this action."
                      if access.is_sqs_action(name)
                      else "Please refer to the appropriate WSDL for a list of valid actions.")
            raise invalid_value("ActionName", f"SQS:{name}", reason)

    def edit(current: str) -> str:
        new = policy.add_statement(current, queue_arn=queue.arn, label=label,
                                   accounts=accounts, actions=actions)
        if new is None:
            raise invalid_value("Label", label, "Already exists.")
        if len(new.encode("utf-8")) > MAX_POLICY_BYTES:
            raise errors.over_limit(
                f"The policy would exceed the maximum size of {MAX_POLICY_BYTES} bytes.")
        return new

    svc.registry.edit_policy(queue, edit)


@action("RemovePermission")
def remove_permission(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    queue = svc.queue(caller, params)
    label = _label(params)

    def edit(current: str) -> str:
        new = policy.remove_statement(current, label)
        if new is None:
            raise invalid_value("Label", label, "can't find label.")
        return new

    svc.registry.edit_policy(queue, edit)


def _label(params: dict[str, Any]) -> str:
    label = require_str(params, "Label")
    if not _LABEL.fullmatch(label):
        raise errors.invalid_parameter_value(
            "Label can only include alphanumeric characters, hyphens, or underscores. "
            "1 to 80 in length")
    return label


@action("DeleteQueue")
def delete_queue(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    svc.registry.delete(svc.queue(caller, params))


@action("PurgeQueue")
def purge_queue(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    svc.registry.purge(svc.queue(caller, params))


@action("ListDeadLetterSourceQueues")
def list_dead_letter_source_queues(
    svc: Services, caller: Caller, params: dict[str, Any]
) -> QueueUrls:
    queue = svc.queue(caller, params)
    limit = opt_int(params, "MaxResults", 1, 1000)
    sources = svc.registry.redrive.sources_targeting(queue.account, queue.arn)
    return QueueUrls([q.url(caller.base_url) for q in sources[:limit or 1000]])


@action("TagQueue")
def tag_queue(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    queue = svc.queue(caller, params)
    if params.get("Tags") is None or params.get("Tags") == {}:
        raise errors.missing_parameter("Tags")
    svc.registry.tag(queue, validate_tags(params.get("Tags"), queue_name=queue.name))


@action("UntagQueue")
def untag_queue(svc: Services, caller: Caller, params: dict[str, Any]) -> None:
    queue = svc.queue(caller, params)
    svc.registry.untag(queue, validate_tag_keys(params.get("TagKeys")))


@action("ListQueueTags")
def list_queue_tags(svc: Services, caller: Caller, params: dict[str, Any]) -> QueueTags:
    queue = svc.queue(caller, params)
    return QueueTags(dict(queue.tags))


def read_attributes(
    queue: Queue, names: list[str], counts: Callable[[], Mapping[str, str]]
) -> dict[str, str]:
    """GetQueueAttributes: the requested names (or All) with SQS's values."""
    readable = attributes.readable()
    wanted = set(readable) if "All" in names else set(names)
    for name in wanted:
        if name not in readable:
            raise errors.invalid_attribute_name(name)
    values: dict[str, str] = {"QueueArn": queue.arn}
    values["CreatedTimestamp"] = str(queue.record.created)
    values["LastModifiedTimestamp"] = str(queue.record.modified)
    for name, (_, _, default) in attributes.INT_ATTRIBUTES.items():
        values[name] = queue.attributes.get(name, str(default))
    if not queue.attributes.get("KmsMasterKeyId") and "KmsDataKeyReusePeriodSeconds" not in (
        queue.attributes
    ):
        # AWS lists no reuse period for a queue under SSE-SQS (recorded); sealq's analogue
        # is its default key. Set on such a queue, sealq applies it, so it shows.
        del values["KmsDataKeyReusePeriodSeconds"]
    if queue.attributes.get("KmsMasterKeyId"):
        values["KmsMasterKeyId"] = queue.attributes["KmsMasterKeyId"]
        values["SqsManagedSseEnabled"] = "false"
    else:
        values["SqsManagedSseEnabled"] = "true"
    for name in ("Policy", "RedrivePolicy", "RedriveAllowPolicy"):
        if name in queue.attributes:
            values[name] = queue.attributes[name]
    if queue.fifo:
        values["FifoQueue"] = "true"
        values["ContentBasedDeduplication"] = queue.attributes.get(
            "ContentBasedDeduplication", "false"
        )
        for choice, (_, chosen) in attributes.FIFO_CHOICES.items():
            values[choice] = queue.attributes.get(choice, chosen)
    if wanted & set(COUNT_ATTRIBUTES):
        values.update(counts())
    return {k: v for k, v in values.items() if k in wanted}
