"""The queue-policy engine alone: parsing what SQS documents, and evaluating requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.auth import access, policy
from chalicelib.auth.policy import Decision, PolicyError, Request

OWNER = "111111111111"
OTHER = "222222222222"
THIRD = "333333333333"
ARN = f"arn:aws:sqs:us-east-1:{OWNER}:orders"


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sqs:SendMessage",
            "Resource": ARN, **extra}


def decide(text: str, action: str = "sqs:SendMessage", account: str = OTHER,
           secure: bool = True) -> Decision:
    context = {"aws:securetransport": "true" if secure else "false",
               "aws:principalaccount": account}
    return policy.evaluate(policy.parse(text), Request(account, action, ARN, context))


@pytest.mark.parametrize("principal", [
    OTHER, f"arn:aws:iam::{OTHER}:root", [THIRD, OTHER], "*",
])
def test_a_principal_names_an_account_by_id_root_arn_or_star(principal: Any) -> None:
    assert decide(doc(allow(Principal={"AWS": principal}))) is Decision.ALLOW
    assert decide(doc(allow(Principal="*"))) is Decision.ALLOW


def test_another_principal_is_not_allowed() -> None:
    assert decide(doc(allow(Principal={"AWS": THIRD}))) is Decision.NONE
    # IAM users, roles and services: accepted, but no sealq caller is one
    for principal in [{"AWS": f"arn:aws:iam::{OTHER}:user/alice"},
                      {"Service": "sns.amazonaws.com"}]:
        assert decide(doc(allow(Principal=principal))) is Decision.NONE


@pytest.mark.parametrize(("pattern", "action", "hit"), [
    ("sqs:SendMessage", "sqs:SendMessage", True),
    ("SQS:sendmessage", "sqs:SendMessage", True),
    ("sqs:*", "sqs:ReceiveMessage", True),
    ("*", "sqs:ReceiveMessage", True),
    ("sqs:Send*", "sqs:SendMessage", True),
    ("sqs:?endMessage", "sqs:SendMessage", True),
    ("sqs:Send*", "sqs:ReceiveMessage", False),
    ("sns:*", "sqs:SendMessage", False),
    ("sqs:SendMessageBatch", "sqs:SendMessage", False),
])
def test_actions_match_without_case_with_wildcards(pattern: str, action: str, hit: bool) -> None:
    expected = Decision.ALLOW if hit else Decision.NONE
    assert decide(doc(allow(Action=pattern)), action) is expected


def test_resources_match_the_queue_arn_with_wildcards() -> None:
    assert decide(doc(allow(Resource=f"arn:aws:sqs:*:{OWNER}:ord*"))) is Decision.ALLOW
    assert decide(doc(allow(Resource="arn:aws:sqs:us-east-1:*:other"))) is Decision.NONE
    no_resource = allow()
    del no_resource["Resource"]
    assert decide(doc(no_resource)) is Decision.ALLOW  # the queue it is attached to


def test_not_action_and_not_resource_invert_the_match() -> None:
    statement = allow()
    del statement["Action"]
    statement["NotAction"] = "sqs:PurgeQueue"
    assert decide(doc(statement), "sqs:SendMessage") is Decision.ALLOW
    assert decide(doc(statement), "sqs:PurgeQueue") is Decision.NONE
    statement = allow()
    del statement["Resource"]
    statement["NotResource"] = "arn:aws:sqs:*:*:other"
    assert decide(doc(statement)) is Decision.ALLOW


def test_an_explicit_deny_beats_any_allow() -> None:
    deny = {**allow(), "Effect": "Deny", "Principal": "*", "Action": "sqs:*"}
    assert decide(doc(allow(), deny)) is Decision.DENY
    assert decide(doc(deny, allow())) is Decision.DENY


@given(st.lists(st.sampled_from(["allow", "deny", "other"]), max_size=6))
def test_the_decision_is_deny_if_any_deny_applies_else_allow_if_any_allow(
    kinds: list[str]
) -> None:
    statements = [
        allow() if k == "allow" else {**allow(), "Effect": "Deny"} if k == "deny"
        else allow(Principal={"AWS": THIRD}) for k in kinds
    ]
    got = decide(doc(*statements)) if statements else Decision.NONE
    if "deny" in kinds:
        assert got is Decision.DENY
    elif "allow" in kinds:
        assert got is Decision.ALLOW
    else:
        assert got is Decision.NONE


def test_secure_transport_conditions() -> None:
    deny_plain = {"Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                  "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    text = doc(allow(), deny_plain)
    assert decide(text, secure=True) is Decision.ALLOW
    assert decide(text, secure=False) is Decision.DENY


def test_an_absent_key_fails_positive_operators_and_satisfies_negated_ones() -> None:
    # sealq has no service principals: aws:SourceArn / aws:SourceAccount are never present
    positive = allow(Condition={"ArnEquals": {"aws:SourceArn": "arn:aws:sns:*:*:t"}})
    negated = allow(Condition={"StringNotEquals": {"aws:SourceAccount": THIRD}})
    if_exists = allow(Condition={"StringEqualsIfExists": {"aws:SourceAccount": THIRD}})
    null = allow(Condition={"Null": {"aws:SourceArn": "true"}})
    assert decide(doc(positive)) is Decision.NONE
    assert decide(doc(negated)) is Decision.ALLOW
    assert decide(doc(if_exists)) is Decision.ALLOW
    assert decide(doc(null)) is Decision.ALLOW


def test_principal_account_condition_and_key_names_without_case() -> None:
    only_other = allow(Principal="*",
                       Condition={"StringEquals": {"AWS:PrincipalAccount": [OTHER]}})
    assert decide(doc(only_other), account=OTHER) is Decision.ALLOW
    assert decide(doc(only_other), account=THIRD) is Decision.NONE


@pytest.mark.parametrize("statement", [
    allow(Condition={"StringEquals": {"aws:SourceIp": "1.2.3.4"}}),
    allow(Condition={"IpAddress": {"aws:SourceArn": "x"}}),
    allow(Condition={"ForAnyValue:StringEquals": {"aws:SourceArn": "x"}}),
    allow(Condition={"Bool": {"aws:SecureTransport": "maybe"}}),
    allow(Condition="x"),
    {**allow(), "Effect": "allow"},
    {k: v for k, v in allow().items() if k != "Principal"},
    {k: v for k, v in allow().items() if k != "Action"},
    {**allow(), "NotAction": "sqs:*"},
    {**allow(), "NotPrincipal": {"AWS": OTHER}},
    allow(Principal={"AWS": "not-an-account"}),
    allow(Action=[]),
    allow(Action=3),
])
def test_what_sealq_cannot_enforce_is_refused_not_ignored(statement: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        policy.parse(doc(statement))


def test_a_policy_has_known_top_level_elements_and_version() -> None:
    with pytest.raises(PolicyError):
        policy.parse(json.dumps({"Version": "2012-10-17", "Extra": 1}))
    with pytest.raises(PolicyError):
        policy.parse(json.dumps({"Version": "2020-01-01", "Statement": []}))
    single = json.dumps({"Version": "2008-10-17", "Statement": allow()})
    assert decide(single) is Decision.ALLOW


def test_the_owner_is_allowed_unless_denied_and_never_loses_owner_only_actions() -> None:
    deny_all = doc({"Effect": "Deny", "Principal": "*", "Action": "*"})

    def owner(operation: str, text: str) -> Decision:
        return access.decide(owner=OWNER, caller=OWNER, operation=operation,
                             queue_arn=ARN, policy_text=text, secure=True)

    assert owner("SendMessage", "") is Decision.ALLOW
    assert owner("SendMessage", deny_all) is Decision.DENY
    assert owner("SendMessageBatch", deny_all) is Decision.DENY
    for operation in ["SetQueueAttributes", "AddPermission", "RemovePermission", "DeleteQueue"]:
        assert owner(operation, deny_all) is Decision.ALLOW


def test_another_account_gets_only_grantable_actions() -> None:
    everything = doc(allow(Action="sqs:*"))

    def other(operation: str) -> Decision:
        return access.decide(owner=OWNER, caller=OTHER, operation=operation,
                             queue_arn=ARN, policy_text=everything, secure=True)

    for operation in ["SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch",
                      "ChangeMessageVisibilityBatch", "GetQueueAttributes", "PurgeQueue"]:
        assert other(operation) is Decision.ALLOW
    for operation in ["SetQueueAttributes", "AddPermission", "DeleteQueue", "TagQueue",
                      "ListQueueTags"]:
        assert other(operation) is Decision.NONE


def test_add_and_remove_statement_write_the_policy_as_sqs_does() -> None:
    text = policy.add_statement("", queue_arn=ARN, label="one", accounts=[OTHER],
                                actions=["SendMessage"])
    assert text is not None
    assert json.loads(text) == {
        "Version": "2008-10-17", "Id": f"{ARN}/SQSDefaultPolicy",
        "Statement": [{"Sid": "one", "Effect": "Allow",
                       "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                       "Action": "SQS:SendMessage", "Resource": ARN}]}
    two = policy.add_statement(text, queue_arn=ARN, label="two", accounts=[OTHER, THIRD],
                               actions=["ReceiveMessage", "DeleteMessage"])
    assert two is not None
    second = json.loads(two)["Statement"][1]
    assert second["Principal"] == {"AWS": [f"arn:aws:iam::{OTHER}:root",
                                           f"arn:aws:iam::{THIRD}:root"]}
    assert second["Action"] == ["SQS:ReceiveMessage", "SQS:DeleteMessage"]
    assert policy.add_statement(two, queue_arn=ARN, label="one", accounts=[OTHER],
                                actions=["*"]) is None
    assert policy.remove_statement(two, "missing") is None
    one_left = policy.remove_statement(two, "one")
    assert one_left is not None and [s["Sid"] for s in json.loads(one_left)["Statement"]] == [
        "two"]
    assert policy.remove_statement(one_left, "two") == ""
    policy.parse(two)  # what AddPermission writes, sealq enforces


def test_a_stored_policy_sealq_cannot_enforce_grants_nothing_and_denies_the_owner_nothing(
) -> None:
    legacy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*",
                                        "Condition": {"IpAddress": {"aws:SourceIp": "1.2.3.4"}}}]})

    def decide_for(caller: str) -> Decision:
        return access.decide(owner=OWNER, caller=caller, operation="SendMessage",
                             queue_arn=ARN, policy_text=legacy, secure=True)

    assert decide_for(OTHER) is Decision.NONE
    assert decide_for(OWNER) is Decision.ALLOW
