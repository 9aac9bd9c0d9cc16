"""An SQS client that speaks the query protocol, standing in for an older SDK.

botocore's SQS model is JSON 1.0 now; this copies it and puts back what the
2012-11-05 query model had (protocol, result wrappers, the query names of flattened
lists and maps, the legacy error codes), so botocore's own query serializer and XML
parser drive the wire.
The names are kept here by hand, independently of sealq's derivation, from the
old query model as moto 5.2.5 restores it (sqs/2012-11-05/service-2.moto-extras.json).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

# list shape -> its element's query name
LIST_ELEMENTS = {
    "AWSAccountIdList": "AWSAccountId",
    "ActionNameList": "ActionName",
    "AttributeNameList": "AttributeName",
    "BatchResultErrorEntryList": "BatchResultErrorEntry",
    "BinaryList": "BinaryListValue",
    "ChangeMessageVisibilityBatchRequestEntryList": "ChangeMessageVisibilityBatchRequestEntry",
    "ChangeMessageVisibilityBatchResultEntryList": "ChangeMessageVisibilityBatchResultEntry",
    "DeleteMessageBatchRequestEntryList": "DeleteMessageBatchRequestEntry",
    "DeleteMessageBatchResultEntryList": "DeleteMessageBatchResultEntry",
    # Not in the old query model (added with JSON 1.0): the same convention as the rest.
    "ListMessageMoveTasksResultEntryList": "ListMessageMoveTasksResultEntry",
    "MessageAttributeNameList": "MessageAttributeName",
    "MessageList": "Message",
    "QueueUrlList": "QueueUrl",
    "SendMessageBatchRequestEntryList": "SendMessageBatchRequestEntry",
    "SendMessageBatchResultEntryList": "SendMessageBatchResultEntry",
    "StringList": "StringListValue",
    "TagKeyList": "TagKey",
}
# structure member holding a flattened map -> the map entry's query name
MAP_MEMBERS = {
    "Attributes": "Attribute",
    "MessageAttributes": "MessageAttribute",
    "MessageSystemAttributes": "MessageSystemAttribute",
    "Tags": "Tag",
    "tags": "Tag",
}
MAP_KEYS = {"TagMap": ("Key", "Value")}
# error shape -> its query error code, where that is not the shape's name
ERROR_CODES = {
    "BatchEntryIdsNotDistinct": "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "BatchRequestTooLong": "AWS.SimpleQueueService.BatchRequestTooLong",
    "EmptyBatchRequest": "AWS.SimpleQueueService.EmptyBatchRequest",
    "InvalidBatchEntryId": "AWS.SimpleQueueService.InvalidBatchEntryId",
    "MessageNotInflight": "AWS.SimpleQueueService.MessageNotInflight",
    "PurgeQueueInProgress": "AWS.SimpleQueueService.PurgeQueueInProgress",
    "QueueDeletedRecently": "AWS.SimpleQueueService.QueueDeletedRecently",
    "QueueDoesNotExist": "AWS.SimpleQueueService.NonExistentQueue",
    "QueueNameExists": "QueueAlreadyExists",
    "TooManyEntriesInBatchRequest": "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "UnsupportedOperation": "AWS.SimpleQueueService.UnsupportedOperation",
}
NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"


def query_model() -> dict[str, Any]:
    loader = botocore.session.get_session().get_component("data_loader")
    model = copy.deepcopy(loader.load_service_model("sqs", "service-2"))
    metadata = model["metadata"]
    metadata["protocol"] = "query"
    metadata["protocols"] = ["query"]
    metadata["xmlNamespace"] = NAMESPACE
    for name, operation in model["operations"].items():
        if "output" in operation:
            operation["output"]["resultWrapper"] = f"{name}Result"
    for name, shape in model["shapes"].items():
        if name in ERROR_CODES:
            shape.setdefault("error", {})["code"] = ERROR_CODES[name]
        if shape["type"] == "list" and name in LIST_ELEMENTS:
            shape["member"]["locationName"] = LIST_ELEMENTS[name]
        if shape["type"] == "map":
            key, value = MAP_KEYS.get(name, ("Name", "Value"))
            shape["key"]["locationName"] = key
            shape["value"]["locationName"] = value
        for member_name, member in shape.get("members", {}).items():
            target = model["shapes"][member["shape"]]
            if target["type"] == "map" and member_name in MAP_MEMBERS:
                member["locationName"] = MAP_MEMBERS[member_name]
    return model


def query_client(
    endpoint: str, data_dir: Path, config: Config | None = None,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """A boto3 SQS client that sends ``Action=...`` forms and reads XML, signed with
    ``credentials`` (access key id, secret): the test key by default."""
    from tests.harness import TEST_KEY_ID, TEST_SECRET

    key_id, secret = credentials or (TEST_KEY_ID, TEST_SECRET)
    target = data_dir / "sqs" / "2012-11-05"
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(query_model()))
    core = botocore.session.Session()
    core.set_config_variable("data_path", str(data_dir))
    session = boto3.session.Session(
        botocore_session=core,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    client = session.client(
        "sqs",
        endpoint_url=endpoint,
        config=config or Config(retries={"total_max_attempts": 1}),
    )
    assert client.meta.service_model.protocol == "query"
    return client
