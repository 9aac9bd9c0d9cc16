"""Queue policies: the subset of the IAM policy language SQS documents for queues.

Two pure steps. :func:`parse` checks a ``Policy`` attribute when it is set
(SetQueueAttributes refuses what sealq would not enforce — an unknown condition key
or operator, ``NotPrincipal`` — rather than ignore it); :func:`evaluate` answers one
request against a parsed policy: an explicit Deny wins, then an Allow, else nothing
applies (the implicit deny).

What is understood:

- ``Effect`` ``Allow`` / ``Deny``; ``Statement`` an object or a list of them.
- ``Principal``: ``"*"``, ``{"AWS": "*"}``, an account id or its root ARN
  (``arn:aws:iam::123456789012:root``), alone or in a list. Other principals (IAM
  users and roles, ``Service``, ``Federated``) are accepted but match no sealq caller:
  sealq has no IAM, an account's access keys act as that account's root.
- ``Action`` / ``NotAction``: ``sqs:SendMessage``, ``SQS:*``, ``*`` …, compared
  without regard to case, with ``*`` and ``?`` wildcards.
- ``Resource`` / ``NotResource``: ARNs with wildcards; a statement naming neither is
  about the queue the policy is attached to.
- ``Condition``: the operators below (``...IfExists`` too) on ``aws:SourceAccount``,
  ``aws:SourceArn``, ``aws:SecureTransport`` and ``aws:PrincipalAccount``. A key absent
  from the request fails a positive operator and satisfies a negated one, as in IAM;
  sealq has no service principals, so ``aws:SourceAccount``/``aws:SourceArn`` are
  always absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

ALLOW = "Allow"
DENY = "Deny"
VERSIONS = frozenset({"2012-10-17", "2008-10-17"})
_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {"Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "NotResource",
     "Condition"}
)
# Condition keys sealq can answer (IAM compares key names without regard to case).
CONDITION_KEYS = frozenset(
    {"aws:sourceaccount", "aws:sourcearn", "aws:securetransport", "aws:principalaccount"}
)
_STRING_OPERATORS = frozenset(
    {"StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
     "StringLike", "StringNotLike", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike"}
)
OPERATORS = frozenset(
    {*_STRING_OPERATORS, *(f"{op}IfExists" for op in _STRING_OPERATORS),
     "Bool", "BoolIfExists", "Null"}
)
_ACCOUNT = re.compile(r"[0-9]{12}")
_ROOT_ARN = re.compile(r"arn:aws[a-z-]*:iam::([0-9]{12}):root")


class PolicyError(ValueError):
    """A policy sealq refuses to store (SetQueueAttributes answers InvalidAttributeValue)."""


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"  # an explicit Deny applies
    NONE = "none"  # no statement applies: the implicit deny


@dataclass(frozen=True)
class Request:
    """What a statement is matched against."""

    account: str  # the caller's account (its keys act as the account's root)
    action: str  # "sqs:SendMessage"
    resource: str  # the queue ARN
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys, lower case


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str  # lower case
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    effect: str
    principals: tuple[str, ...]  # "*" or 12-digit account ids; () matches no sealq caller
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...]  # () means the queue the policy is attached to
    not_resource: bool
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


def _strings(value: object, what: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(item, str) and item for item in items):
        raise PolicyError(f"{what} must be a string or a list of strings")
    return tuple(items)


def _principals(value: object) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if not isinstance(value, dict) or not value:
        raise PolicyError("Principal must be \"*\" or an object")
    found: list[str] = []
    for kind, names in value.items():
        listed = _strings(names, f"Principal {kind}")
        if kind != "AWS":
            continue  # Service, Federated, CanonicalUser: no such sealq caller
        for name in listed:
            root = _ROOT_ARN.fullmatch(name)
            if name == "*":
                found.append("*")
            elif _ACCOUNT.fullmatch(name):
                found.append(name)
            elif root:
                found.append(root.group(1))
            elif not name.startswith("arn:"):
                raise PolicyError(f"invalid principal {name}")
            # IAM users and roles: accepted, match no sealq caller
    return tuple(found)


def _conditions(value: object) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise PolicyError("Condition must be an object")
    out: list[Condition] = []
    for operator, block in value.items():
        if operator not in OPERATORS:
            raise PolicyError(f"unsupported condition operator {operator}")
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"condition {operator} must be an object")
        for key, raw in block.items():
            if not isinstance(key, str) or key.lower() not in CONDITION_KEYS:
                raise PolicyError(f"unsupported condition key {key}")
            items = raw if isinstance(raw, list) else [raw]
            if not items:
                raise PolicyError(f"condition {operator} {key} has no value")
            values: list[str] = []
            for item in items:
                if isinstance(item, bool):
                    values.append("true" if item else "false")
                elif isinstance(item, str | int) and not isinstance(item, bool):
                    values.append(str(item))
                else:
                    raise PolicyError(f"condition {operator} {key} takes strings")
            if operator.startswith(("Bool", "Null")) and any(
                v.lower() not in ("true", "false") for v in values
            ):
                raise PolicyError(f"condition {operator} takes true or false")
            out.append(Condition(operator, key.lower(), tuple(values)))
    return tuple(out)


def _statement(raw: object) -> Statement:
    if not isinstance(raw, dict):
        raise PolicyError("a statement is an object")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicyError(f"unsupported statement element {sorted(unknown)[0]}")
    effect = raw.get("Effect")
    if effect not in (ALLOW, DENY):
        raise PolicyError("Effect must be Allow or Deny")
    if "Principal" not in raw:
        raise PolicyError("a queue policy statement needs a Principal")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError("a statement has one of Action and NotAction")
    if "Resource" in raw and "NotResource" in raw:
        raise PolicyError("a statement has at most one of Resource and NotResource")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError("Sid must be a string")
    not_action = "NotAction" in raw
    not_resource = "NotResource" in raw
    resources = raw.get("NotResource" if not_resource else "Resource")
    return Statement(
        effect=str(effect),
        principals=_principals(raw["Principal"]),
        actions=_strings(raw["NotAction" if not_action else "Action"], "Action"),
        not_action=not_action,
        resources=() if resources is None else _strings(resources, "Resource"),
        not_resource=not_resource,
        conditions=_conditions(raw["Condition"]) if "Condition" in raw else (),
    )


def parse_document(document: object) -> Policy:
    """A decoded policy document, checked; raises :class:`PolicyError`."""
    if not isinstance(document, dict):
        raise PolicyError("a policy is a JSON object")
    unknown = set(document) - _TOP_LEVEL
    if unknown:
        raise PolicyError(f"unsupported policy element {sorted(unknown)[0]}")
    if "Version" in document and document["Version"] not in VERSIONS:
        raise PolicyError("unsupported policy Version")
    if "Id" in document and not isinstance(document["Id"], str):
        raise PolicyError("Id must be a string")
    raw = document.get("Statement", [])
    items = raw if isinstance(raw, list) else [raw]
    return Policy(tuple(_statement(item) for item in items))


@lru_cache(maxsize=1024)
def parse(text: str) -> Policy:
    """A stored ``Policy`` attribute; "" is no policy. Cached: queues keep theirs."""
    if not text:
        return Policy(())
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise PolicyError("a policy is JSON") from None
    return parse_document(document)


@lru_cache(maxsize=4096)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _like(glob: str, value: str, ignore_case: bool = False) -> bool:
    return _pattern(glob, ignore_case).fullmatch(value) is not None


def _action_matches(statement: Statement, action: str) -> bool:
    hit = any(_like(pattern, action, ignore_case=True) for pattern in statement.actions)
    return hit != statement.not_action


def _resource_matches(statement: Statement, resource: str) -> bool:
    if not statement.resources:
        return not statement.not_resource  # about this queue (NotResource: nothing)
    hit = any(_like(pattern, resource) for pattern in statement.resources)
    return hit != statement.not_resource


def _principal_matches(statement: Statement, account: str) -> bool:
    return "*" in statement.principals or account in statement.principals


def _condition_holds(condition: Condition, context: Mapping[str, str]) -> bool:
    operator, values = condition.operator, condition.values
    present = condition.key in context
    if operator == "Null":
        # Null: true means "the key is absent"
        return all((v.lower() == "true") != present for v in values)
    if_exists = operator.endswith("IfExists")
    base = operator[: -len("IfExists")] if if_exists else operator
    negated = "Not" in base
    if not present:
        return if_exists or negated
    actual = context[condition.key]
    if base == "Bool":
        return actual.lower() in (v.lower() for v in values)
    ignore_case = base.endswith("IgnoreCase")
    like = "Like" in base
    if like:
        hit = any(_like(v, actual) for v in values)
    elif ignore_case:
        hit = actual.lower() in (v.lower() for v in values)
    else:
        hit = actual in values
    return hit != negated


def _applies(statement: Statement, request: Request) -> bool:
    return (
        _principal_matches(statement, request.account)
        and _action_matches(statement, request.action)
        and _resource_matches(statement, request.resource)
        and all(_condition_holds(c, request.context) for c in statement.conditions)
    )


def evaluate(policy: Policy, request: Request) -> Decision:
    """An explicit Deny wins over any Allow; with neither, :attr:`Decision.NONE`."""
    allowed = False
    for statement in policy.statements:
        if _applies(statement, request):
            if statement.effect == DENY:
                return Decision.DENY
            allowed = True
    return Decision.ALLOW if allowed else Decision.NONE


# -- AddPermission / RemovePermission -------------------------------------------------


def default_policy_id(queue_arn: str) -> str:
    return f"{queue_arn}/SQSDefaultPolicy"


def _one_or_list(values: Sequence[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def add_statement(
    text: str, *, queue_arn: str, label: str, accounts: Sequence[str], actions: Sequence[str]
) -> str | None:
    """The policy text with AddPermission's statement appended, as SQS writes it; None
    when ``label`` is already a Sid. ``actions`` are bare names (``SendMessage``)."""
    document: dict[str, Any] = (
        json.loads(text) if text
        # AWS writes the policy it makes with the 2008 version (recorded).
        else {"Version": "2008-10-17", "Id": default_policy_id(queue_arn), "Statement": []}
    )
    raw = document.get("Statement", [])
    statements = list(raw) if isinstance(raw, list) else [raw]
    if any(isinstance(s, dict) and s.get("Sid") == label for s in statements):
        return None
    statements.append({
        "Sid": label,
        "Effect": ALLOW,
        "Principal": {"AWS": _one_or_list([f"arn:aws:iam::{a}:root" for a in accounts])},
        "Action": _one_or_list([f"SQS:{a}" for a in actions]),
        "Resource": queue_arn,
    })
    document["Statement"] = statements
    return json.dumps(document, separators=(",", ":"))


def remove_statement(text: str, label: str) -> str | None:
    """The policy text without the statement whose Sid is ``label`` ("" when none is
    left: the Policy attribute goes); None when there is no such statement."""
    if not text:
        return None
    document: dict[str, Any] = json.loads(text)
    raw = document.get("Statement", [])
    statements = list(raw) if isinstance(raw, list) else [raw]
    kept = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == label)]
    if len(kept) == len(statements):
        return None
    if not kept:
        return ""
    document["Statement"] = kept
    return json.dumps(document, separators=(",", ":"))
