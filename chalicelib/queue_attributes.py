"""Queue attributes: which exist, their SQS ranges and defaults, and their validation.

Pure rules with no AWS calls; the registry (queues.py) applies them before it
writes anything.
"""

from __future__ import annotations

import json

from chalicelib.protocol import errors
from chalicelib.storage.ports import COUNT_ATTRIBUTES

# name -> (low, high, default) for the integer attributes SQS lets you set.
INT_ATTRIBUTES: dict[str, tuple[int, int, int]] = {
    "DelaySeconds": (0, 900, 0),
    "MaximumMessageSize": (1024, 1048576, 1048576),
    "MessageRetentionPeriod": (60, 1209600, 345600),
    "ReceiveMessageWaitTimeSeconds": (0, 20, 0),
    "VisibilityTimeout": (0, 43200, 30),
    "KmsDataKeyReusePeriodSeconds": (60, 86400, 300),
}
SETTABLE = frozenset(
    {*INT_ATTRIBUTES, "KmsMasterKeyId", "SqsManagedSseEnabled", "Policy",
     "ContentBasedDeduplication", "RedrivePolicy"}
)
FIFO_ONLY = frozenset({"ContentBasedDeduplication"})
ALL_READABLE = (
    "QueueArn",
    *COUNT_ATTRIBUTES,
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "VisibilityTimeout",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "ReceiveMessageWaitTimeSeconds",
    "Policy",
    "RedrivePolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
)




def validate_attributes(raw: dict[str, str], *, fifo: bool, creating: bool) -> dict[str, str]:
    """Check names and values against SQS's rules; returns the normalized values."""
    out: dict[str, str] = {}
    for name, value in raw.items():
        if name == "FifoQueue" and creating:
            continue
        if name not in SETTABLE or (name in FIFO_ONLY and not fifo):
            raise errors.invalid_attribute_name(name)
        if not isinstance(value, str):
            raise errors.invalid_attribute_value(name, f"Invalid value for the parameter {name}.")
        if name in INT_ATTRIBUTES:
            low, high, _ = INT_ATTRIBUTES[name]
            try:
                number = int(value.strip())
            except ValueError:
                number = None
            if number is None or not low <= number <= high:
                raise errors.invalid_attribute_value(
                    name, f"Invalid value for the parameter {name}."
                )
            out[name] = str(number)
        elif name in ("SqsManagedSseEnabled", "ContentBasedDeduplication"):
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                raise errors.invalid_attribute_value(
                    name, f"Invalid value for the parameter {name}."
                )
            out[name] = lowered
        elif name == "RedrivePolicy":
            out[name] = _normalize_redrive(value)
        elif name == "KmsMasterKeyId":
            if not value.strip():
                raise errors.invalid_attribute_value(
                    name, f"Invalid value for the parameter {name}."
                )
            out[name] = value.strip()
        else:
            out[name] = value
    if out.get("SqsManagedSseEnabled") == "true" and out.get("KmsMasterKeyId"):
        raise errors.SqsError(
            "InvalidAttributeName",
            "You can use one type of server-side encryption (SSE) at one time. You can "
            "either enable KMS SSE or SQS SSE.",
        )
    if out.get("SqsManagedSseEnabled") == "false" and not out.get("KmsMasterKeyId"):
        raise errors.invalid_attribute_value(
            "SqsManagedSseEnabled",
            "sealq encrypts every queue: without KmsMasterKeyId it uses the service's own key.",
        )
    return out


def redrive_error(value: str, reason: str) -> errors.SqsError:
    return errors.invalid_parameter_value(
        f"Value {value} for parameter RedrivePolicy is invalid. Reason: {reason}"
    )


def _normalize_redrive(value: str) -> str:
    """RedrivePolicy as canonical JSON; "" (remove the policy) stays ""."""
    if value.strip() == "":
        return ""
    try:
        policy = json.loads(value)
    except ValueError:
        policy = None
    if not isinstance(policy, dict):
        raise redrive_error(value, "Redrive policy is not a dict or valid json.")
    target = policy.get("deadLetterTargetArn")
    if not isinstance(target, str) or not target:
        raise redrive_error(value, "Redrive policy does not contain mandatory attribute: "
                                    "deadLetterTargetArn.")
    raw_count = policy.get("maxReceiveCount")
    try:
        count = int(str(raw_count))
    except ValueError:
        count = 0
    if isinstance(raw_count, bool) or not 1 <= count <= 1000:
        raise redrive_error(value, "Invalid value for maxReceiveCount: "
                                    f"{raw_count}, valid values are from 1 to 1000 both inclusive.")
    return json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": count})


def parse_arn(arn: str) -> tuple[str, str] | None:
    """(account, name) of an SQS queue ARN."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"]:
        return None
    return parts[4], parts[5]
