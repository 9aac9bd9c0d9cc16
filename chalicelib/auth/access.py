"""Who may do what to a queue: the owner, and other accounts its policy grants.

A queue belongs to the account in its URL and ARN. The owner may do everything,
except what an explicit Deny in its own queue policy forbids (as in AWS, where a
queue policy's Deny binds same-account principals too) — but never the owner-only
actions (SetQueueAttributes, AddPermission, RemovePermission, DeleteQueue, the tag
actions): the owner cannot lock itself out of repairing the policy. Another account
is denied unless the policy allows the action and nothing denies it; the owner-only
actions cannot be granted at all (SQS Developer Guide, "Limitations of Amazon SQS
custom policies").
"""

from __future__ import annotations

from chalicelib import errors
from chalicelib.auth import policy
from chalicelib.aws import service_model

# is its single action.
_BATCHES = {
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
    "DeleteMessageBatch": "DeleteMessage",
    "SendMessageBatch": "SendMessage",
}
# What another account can be granted (AddPermission's valid ActionNames, ``*`` aside).
GRANTABLE = frozenset(
    {"ChangeMessageVisibility", "DeleteMessage", "GetQueueAttributes", "GetQueueUrl",
     "ListDeadLetterSourceQueues", "PurgeQueue", "ReceiveMessage", "SendMessage"}
)


def sqs_action(operation: str) -> str:
    return _BATCHES.get(operation, operation)


def is_sqs_action(name: str) -> bool:
    """Whether ``name`` is an ``sqs:`` action (an operation's name, batches aside)."""
    return name in service_model.operations() and name not in _BATCHES


def decide(
    *, owner: str, caller: str, operation: str, queue_arn: str, policy_text: str,
    secure: bool,
) -> policy.Decision:
    """ALLOW or not for ``caller`` doing ``operation`` on the queue ``owner`` owns."""
    action = sqs_action(operation)
    if caller == owner and action not in GRANTABLE:
        return policy.Decision.ALLOW  # owner-only: never denied to the owner
    if caller != owner and action not in GRANTABLE:
        return policy.Decision.NONE
    try:
        parsed = policy.parse(policy_text)
    except policy.PolicyError:
        # Stored before policies were checked, and not enforceable as written: it
        # grants nothing to another account and denies nothing to the owner, who can
        # replace it.
        parsed = policy.Policy(())
    request = policy.Request(
        account=caller, action=f"sqs:{action}", resource=queue_arn,
        context={"aws:securetransport": "true" if secure else "false",
                 "aws:principalaccount": caller},
    )
    decision = policy.evaluate(parsed, request)
    if caller == owner and decision is policy.Decision.NONE:
        return policy.Decision.ALLOW
    return decision


def denied(caller: str, operation: str, queue_arn: str, explicit: bool) -> errors.SqsError:
    """SQS's AccessDenied (HTTP 403), worded as AWS words a resource-policy refusal."""
    action = f"sqs:{sqs_action(operation).lower()}"
    why = (
        "with an explicit deny in a resource-based policy" if explicit
        else f"because no resource-based policy allows the {action} action"
    )
    return errors.access_denied_message(
        f"User: arn:aws:iam::{caller}:root is not authorized to perform: {action} "
        f"on resource: {queue_arn} {why}"
    )
