"""Queue attributes: which exist, their SQS ranges and defaults, and their validation.

Pure rules with no AWS calls; the registry (queues.py) applies them before it
writes anything.
"""

from __future__ import annotations

import json
import re

from chalicelib import errors
from chalicelib.auth import policy as queue_policy
from chalicelib.aws import service_model
from chalicelib.domain.chars import first_invalid_char

# name -> (low, high, default) for the integer attributes SQS lets you set.
INT_ATTRIBUTES: dict[str, tuple[int, int, int]] = {
    "DelaySeconds": (0, 900, 0),
    "MaximumMessageSize": (1024, 1048576, 1048576),
    "MessageRetentionPeriod": (60, 1209600, 345600),
    "ReceiveMessageWaitTimeSeconds": (0, 20, 0),
    "VisibilityTimeout": (0, 43200, 30),
    "KmsDataKeyReusePeriodSeconds": (60, 86400, 300),
}
# FIFO high throughput: name -> (allowed values, default). SQS Developer Guide,
# "High throughput for FIFO queues"; stored and returned (sealq has no quota to lift).
FIFO_CHOICES: dict[str, tuple[frozenset[str], str]] = {
    "DeduplicationScope": (frozenset({"messageGroup", "queue"}), "queue"),
    "FifoThroughputLimit": (frozenset({"perQueue", "perMessageGroupId"}), "perQueue"),
}
SETTABLE = frozenset(
    {*INT_ATTRIBUTES, *FIFO_CHOICES, "KmsMasterKeyId", "SqsManagedSseEnabled", "Policy",
     "ContentBasedDeduplication", "RedrivePolicy", "RedriveAllowPolicy"}
)
FIFO_ONLY = frozenset({"ContentBasedDeduplication", *FIFO_CHOICES})


def readable() -> tuple[str, ...]:
    """Every attribute GetQueueAttributes can return (SQS's ``QueueAttributeName``)."""
    return service_model.names("QueueAttributeName")

# SQS Developer Guide, "Amazon SQS policy quotas": a queue policy is at most 8,192 bytes.
MAX_POLICY_BYTES = 8192
# Integers as SQS (a Java service) parses them: Integer.parseInt takes an optional sign
# and leading zeros but no whitespace. sealq takes ASCII digits only, and at most 10.
_INTEGER = re.compile(r"[+-]?[0-9]{1,10}", re.ASCII)


def _invalid(name: str) -> errors.SqsError:
    return errors.invalid_attribute_value(name, f"Invalid value for the parameter {name}.")


def _parse_int(name: str, value: str) -> int:
    low, high, _ = INT_ATTRIBUTES[name]
    if not _INTEGER.fullmatch(value):
        raise _invalid(name)
    number = int(value)
    if not low <= number <= high:
        raise _invalid(name)
    return number


def _has_invalid_text(data: object) -> bool:
    """True when a decoded JSON value holds a character SQS refuses (e.g. a lone surrogate
    written as a ``\\ud800`` escape inside the policy text)."""
    if isinstance(data, str):
        return first_invalid_char(data) is not None
    if isinstance(data, dict):
        return any(_has_invalid_text(k) or _has_invalid_text(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_has_invalid_text(item) for item in data)
    return False


def _reject_constant(_name: str) -> object:
    raise ValueError("NaN and Infinity are not JSON")


def _check_policy(value: str) -> str:
    """A policy is JSON object text of at most 8,192 bytes; "" (remove the policy) stays ""."""
    if value == "":
        return ""
    if len(value.encode("utf-8", "surrogatepass")) > MAX_POLICY_BYTES:
        raise _invalid("Policy")
    try:
        policy = json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _invalid("Policy") from None
    if not isinstance(policy, dict) or _has_invalid_text(policy):
        raise _invalid("Policy")
    try:
        queue_policy.parse_document(policy)  # what sealq cannot enforce is refused
    except queue_policy.PolicyError:
        raise _invalid("Policy") from None
    return value


def validate_attributes(raw: dict[str, str], *, fifo: bool, creating: bool) -> dict[str, str]:
    """Check names and values against SQS's rules; returns the normalized values.

    Every value is checked before anything is written. Two empty values are kept as ""
    on purpose, meaning "remove": ``Policy=""`` drops the queue policy and
    ``KmsMasterKeyId=""`` returns the queue to the service's default key (as
    ``RedrivePolicy=""`` drops the redrive policy); the registry deletes them.
    A ``KmsMasterKeyId`` is any text, as AWS takes it (recorded: ``testKeyId``): the
    account's allow-list decides it, and KMS's own answer comes when a message is sent.
    """
    out: dict[str, str] = {}
    for name, value in raw.items():
        if name == "FifoQueue" and creating:
            continue
        if name in FIFO_CHOICES and not fifo:
            raise errors.invalid_attribute_name(
                name, f"You can specify the {name} only when FifoQueue is set to true.")
        if name not in SETTABLE or (name in FIFO_ONLY and not fifo):
            raise errors.invalid_attribute_name(name)
        if not isinstance(value, str) or first_invalid_char(value) is not None:
            raise _invalid(name)
        if name in INT_ATTRIBUTES:
            out[name] = str(_parse_int(name, value))
        elif name in ("SqsManagedSseEnabled", "ContentBasedDeduplication"):
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                raise _invalid(name)
            out[name] = lowered
        elif name in FIFO_CHOICES:
            if value not in FIFO_CHOICES[name][0]:
                raise _invalid(name)
            out[name] = value
        elif name == "RedrivePolicy":
            out[name] = _normalize_redrive(value)
        elif name == "RedriveAllowPolicy":
            out[name] = _normalize_redrive_allow(value)
        elif name == "Policy":
            out[name] = _check_policy(value)
        else:  # KmsMasterKeyId: any text (the account's allow-list is checked next)
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
        policy = json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
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


# SQS Developer Guide: a dead-letter queue's RedriveAllowPolicy names at most 10 sources.
MAX_REDRIVE_SOURCES = 10
REDRIVE_PERMISSIONS = ("allowAll", "denyAll", "byQueue")


def _redrive_allow_error(value: str, reason: str) -> errors.SqsError:
    return errors.invalid_parameter_value(
        f"Value {value} for parameter RedriveAllowPolicy is invalid. Reason: Amazon SQS can't "
        f"create the redrive allow policy. {reason}"
    )


def _normalize_redrive_allow(value: str) -> str:
    """RedriveAllowPolicy as canonical JSON; "" (remove the policy) stays "".

    The texts are SQS's: a shape it cannot read is an InvalidAttributeValue ("as it's in
    an unsupported format"); a readable policy that breaks a rule names the rule.
    """
    if value.strip() == "":
        return ""
    unsupported = errors.invalid_attribute_value(
        "RedriveAllowPolicy",
        "Invalid value for the parameter RedriveAllowPolicy. Reason: Amazon SQS can't create "
        "the redrive allow policy, as it\u2019s in an unsupported format.",
    )
    try:
        policy = json.loads(value, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise unsupported from None
    if not isinstance(policy, dict) or set(policy) - {"redrivePermission", "sourceQueueArns"}:
        raise unsupported
    permission = policy.get("redrivePermission")
    if permission not in REDRIVE_PERMISSIONS:
        raise unsupported
    arns = policy.get("sourceQueueArns")
    if arns is not None and (
        not isinstance(arns, list) or not all(isinstance(a, str) for a in arns)
    ):
        raise unsupported
    if arns and permission != "byQueue":
        raise _redrive_allow_error(value, "To specify one or more source queue ARNs, you must "
                                          "set redrivePermission to byQueue.")
    if permission == "byQueue" and not arns:
        raise _redrive_allow_error(value, "When you specify the byQueue permission type, you "
                                          "must also specify one or more sourceQueueArns values.")
    if arns and len(arns) > MAX_REDRIVE_SOURCES:
        raise _redrive_allow_error(value, "The maximum number of source queue ARNs you can "
                                          f"specify is {MAX_REDRIVE_SOURCES}.")
    canonical: dict[str, object] = {"redrivePermission": permission}
    if arns:
        canonical["sourceQueueArns"] = list(arns)
    return json.dumps(canonical, separators=(",", ":"))


def redrive_allowed(allow_policy: str | None, source_arn: str) -> bool:
    """Whether a dead-letter queue with this (normalized) RedriveAllowPolicy takes
    ``source_arn`` as a source; no policy is allowAll, SQS's default."""
    if not allow_policy:
        return True
    policy = json.loads(allow_policy)
    permission = policy.get("redrivePermission")
    if permission == "denyAll":
        return False
    if permission == "byQueue":
        return source_arn in policy.get("sourceQueueArns", [])
    return True


def parse_arn(arn: str) -> tuple[str, str] | None:
    """(account, name) of an SQS queue ARN."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"]:
        return None
    return parts[4], parts[5]
