"""Authorization across accounts: real boto3 clients of two (three) accounts, one handler
over in-memory ports (moto adds nothing here: the check is sealq's own)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.awsrequest import AWSResponse
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.clock import FakeClock
from chalicelib.domain.queues.registry import Queue
from chalicelib.handler import container
from chalicelib.storage.ports import Outgoing
from tests.harness import ENDPOINT, TEST_ACCOUNT, refused, sqs_client
from tests.memory import Memory
from tests.query_client import query_client
from tools.admin.accounts import Accounts

B = "222222222222"
C = "333333333333"
B_KEY = Credentials("AKIASEALQTESTKEYBBBB", "sealqSecondTenantSecret/0123456789abcdef")
C_KEY = Credentials("AKIASEALQTESTKEYCCCC", "sealqThirdTenantSecret/0123456789abcdefg")


class Stack:
    def __init__(self, clock: FakeClock) -> None:
        memory = Memory(clock, retries=1)
        self.ports, self.keys, self.handler = memory.ports, memory.keys, memory.handler
        accounts = Accounts(self.ports.accounts, self.keys, clock)
        for account, key in ((B, B_KEY), (C, C_KEY)):
            accounts.create_account(f"tenant-{account}", account)
            accounts.register_access_key(account, key.access_key, key.secret_key)
        self.a = memory.sqs
        self.b = sqs_client(self.handler, retries=1, credentials=B_KEY)
        self.c = sqs_client(self.handler, retries=1, credentials=C_KEY)

    def queue(self, url: str) -> Queue:
        account, name = urlsplit(url).path.strip("/").split("/")
        return self.handler.actions.services.registry.get(account, name)


@pytest.fixture
def stack(clock: FakeClock) -> Stack:
    return Stack(clock)


DENIED = ("AccessDenied", 403)


def every_call(client: Any, url: str) -> dict[str, tuple[Any, dict[str, Any]]]:
    """One call of each queue action, as another account would try it."""
    entry = [{"Id": "e", "MessageBody": "x"}]
    return {
        "SendMessage": (client.send_message, {"QueueUrl": url, "MessageBody": "x"}),
        "SendMessageBatch": (client.send_message_batch, {"QueueUrl": url, "Entries": entry}),
        "ReceiveMessage": (client.receive_message, {"QueueUrl": url}),
        "DeleteMessage": (client.delete_message, {"QueueUrl": url, "ReceiptHandle": "h"}),
        "DeleteMessageBatch": (client.delete_message_batch, {
            "QueueUrl": url, "Entries": [{"Id": "e", "ReceiptHandle": "h"}]}),
        "ChangeMessageVisibility": (client.change_message_visibility, {
            "QueueUrl": url, "ReceiptHandle": "h", "VisibilityTimeout": 5}),
        "GetQueueAttributes": (client.get_queue_attributes, {
            "QueueUrl": url, "AttributeNames": ["All"]}),
        "PurgeQueue": (client.purge_queue, {"QueueUrl": url}),
        "ListDeadLetterSourceQueues": (client.list_dead_letter_source_queues, {"QueueUrl": url}),
        "SetQueueAttributes": (client.set_queue_attributes, {
            "QueueUrl": url, "Attributes": {"VisibilityTimeout": "5"}}),
        "DeleteQueue": (client.delete_queue, {"QueueUrl": url}),
        "TagQueue": (client.tag_queue, {"QueueUrl": url, "Tags": {"k": "v"}}),
        "UntagQueue": (client.untag_queue, {"QueueUrl": url, "TagKeys": ["k"]}),
        "ListQueueTags": (client.list_queue_tags, {"QueueUrl": url}),
        "AddPermission": (client.add_permission, {
            "QueueUrl": url, "Label": "mine", "AWSAccountIds": [B], "Actions": ["*"]}),
        "RemovePermission": (client.remove_permission, {"QueueUrl": url, "Label": "grant"}),
    }


def test_another_account_is_denied_every_action_by_default_and_nothing_changes(
    stack: Stack
) -> None:
    url = stack.a.create_queue(QueueName="orders", tags={"team": "a"})["QueueUrl"]
    stack.a.send_message(QueueUrl=url, MessageBody="for A only")
    before = stack.a.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    for name, (call, params) in every_call(stack.b, url).items():
        assert refused(call, **params) == DENIED, name
    # A queue that does not exist is refused alike: no oracle of A's queue names.
    for name, (call, params) in every_call(stack.b, url.replace("orders", "nope")).items():
        assert refused(call, **params) == DENIED, name
    with pytest.raises(stack.b.exceptions.QueueDoesNotExist):
        stack.b.get_queue_url(QueueName="orders", QueueOwnerAWSAccountId=TEST_ACCOUNT)
    assert stack.a.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"] == before
    assert stack.a.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a"}
    got = stack.a.receive_message(QueueUrl=url)["Messages"]
    assert [m["Body"] for m in got] == ["for A only"]


def test_the_refusal_is_aws_access_denied_naming_the_action_and_queue(stack: Stack) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    with pytest.raises(ClientError) as caught:
        stack.b.send_message_batch(QueueUrl=url, Entries=[{"Id": "e", "MessageBody": "x"}])
    error = caught.value.response["Error"]
    arn = stack.queue(url).arn
    assert error["Message"] == (
        f"User: arn:aws:iam::{B}:root is not authorized to perform: sqs:sendmessage on "
        f"resource: {arn} because no resource-based policy allows the sqs:sendmessage action")


def test_after_add_permission_exactly_the_granted_actions_work_for_the_granted_account(
    stack: Stack
) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    stack.a.add_permission(QueueUrl=url, Label="b-sends", AWSAccountIds=[B],
                           Actions=["SendMessage", "GetQueueUrl"])
    sent = stack.b.send_message(QueueUrl=url, MessageBody="from B")
    stack.b.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "batch"}])
    assert stack.b.get_queue_url(QueueName="orders", QueueOwnerAWSAccountId=TEST_ACCOUNT)[
        "QueueUrl"] == url
    calls = every_call(stack.b, url)
    for name, (call, params) in calls.items():
        if name not in ("SendMessage", "SendMessageBatch"):
            assert refused(call, **params) == DENIED, name
    for name, (call, params) in every_call(stack.c, url).items():
        assert refused(call, **params) == DENIED, name
    with pytest.raises(stack.c.exceptions.QueueDoesNotExist):
        stack.c.get_queue_url(QueueName="orders", QueueOwnerAWSAccountId=TEST_ACCOUNT)
    got = stack.a.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  MessageSystemAttributeNames=["SenderId"])["Messages"]
    assert sorted(m["Body"] for m in got) == ["batch", "from B"]
    assert {m["Attributes"]["SenderId"] for m in got} == {B}
    assert sent["MessageId"] in {m["MessageId"] for m in got}


def test_a_granted_consumer_receives_deletes_and_reads_attributes(stack: Stack) -> None:
    url = stack.a.create_queue(QueueName="work")["QueueUrl"]
    stack.a.add_permission(QueueUrl=url, Label="consumer", AWSAccountIds=[B], Actions=[
        "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"])
    stack.a.send_message(QueueUrl=url, MessageBody="job")
    (message,) = stack.b.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == "job"
    stack.b.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                      VisibilityTimeout=0)
    (again,) = stack.b.receive_message(QueueUrl=url)["Messages"]
    assert stack.b.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "ReceiptHandle": again["ReceiptHandle"]}]).get("Failed") is None
    attrs = stack.b.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    assert attrs["Attributes"]["QueueArn"] == stack.queue(url).arn
    assert refused(stack.b.send_message, QueueUrl=url, MessageBody="x") == DENIED


def test_remove_permission_denies_again(stack: Stack) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    stack.a.add_permission(QueueUrl=url, Label="grant", AWSAccountIds=[B, C],
                           Actions=["SendMessage"])
    stack.b.send_message(QueueUrl=url, MessageBody="ok")
    stack.c.send_message(QueueUrl=url, MessageBody="ok")
    stack.a.remove_permission(QueueUrl=url, Label="grant")
    assert refused(stack.b.send_message, QueueUrl=url, MessageBody="x") == DENIED
    assert refused(stack.c.send_message, QueueUrl=url, MessageBody="x") == DENIED
    attrs = stack.a.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "Policy" not in attrs  # the last statement gone, the policy goes


def test_a_deny_statement_beats_an_allow(stack: Stack) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    arn = stack.queue(url).arn
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": arn},
        {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{C}:root"},
         "Action": "SQS:Send*", "Resource": arn},
    ]}
    stack.a.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    stack.b.send_message(QueueUrl=url, MessageBody="B may")
    with pytest.raises(ClientError) as caught:
        stack.c.send_message(QueueUrl=url, MessageBody="C may not")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert "explicit deny" in caught.value.response["Error"]["Message"]
    assert [m["Body"] for m in stack.c.receive_message(QueueUrl=url)["Messages"]] == ["B may"]
    # sqs:* still grants no owner-only action to another account
    assert refused(stack.b.set_queue_attributes, QueueUrl=url,
                   Attributes={"Policy": ""}) == DENIED
    assert refused(stack.b.delete_queue, QueueUrl=url) == DENIED


def test_the_owners_own_deny_binds_it_but_never_locks_it_out_of_the_policy(
    stack: Stack
) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:SendMessage"}]}
    stack.a.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    assert refused(stack.a.send_message, QueueUrl=url, MessageBody="x") == DENIED
    stack.a.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    stack.a.send_message(QueueUrl=url, MessageBody="x")


def test_a_policy_requiring_tls_refuses_plain_http(stack: Stack) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": B}, "Action": "sqs:SendMessage"},
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    stack.a.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    assert ENDPOINT.startswith("http://")
    assert refused(stack.b.send_message, QueueUrl=url, MessageBody="x") == DENIED


def test_list_queues_never_shows_another_accounts_queues(stack: Stack) -> None:
    a_url = stack.a.create_queue(QueueName="shared")["QueueUrl"]
    stack.a.add_permission(QueueUrl=a_url, Label="all", AWSAccountIds=[B], Actions=["*"])
    b_url = stack.b.create_queue(QueueName="shared")["QueueUrl"]
    assert stack.a.list_queues()["QueueUrls"] == [a_url]
    assert stack.b.list_queues()["QueueUrls"] == [b_url]
    assert stack.b.list_queues(QueueNamePrefix="sh")["QueueUrls"] == [b_url]
    assert "QueueUrls" not in stack.c.list_queues()
    # with * granted, B works on A's queue through A's URL; its own is a different one
    stack.b.send_message(QueueUrl=a_url, MessageBody="to A")
    assert "Messages" not in stack.b.receive_message(QueueUrl=b_url)
    assert stack.b.receive_message(QueueUrl=a_url)["Messages"][0]["Body"] == "to A"


@pytest.mark.parametrize(("params", "code", "text"), [
    ({"Label": "dup"}, "InvalidParameterValue",
     "Value dup for parameter Label is invalid. Reason: Already exists."),
    ({"Label": "bad label"}, "InvalidParameterValue",
     "Label can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"),
    ({"Label": "x" * 81}, "InvalidParameterValue", None),
    ({"Actions": ["SetQueueAttributes"]}, "InvalidParameterValue",
     "Value SQS:SetQueueAttributes for parameter ActionName is invalid. Reason: Only the "
     "queue owner is allowed to invoke this action."),
    ({"Actions": ["Fly"]}, "InvalidParameterValue",
     "Value SQS:Fly for parameter ActionName is invalid. Reason: Please refer to the "
     "appropriate WSDL for a list of valid actions."),
    ({"Actions": ["SendMessage"] * 8}, "OverLimit",
     "8 Actions were found, maximum allowed is 7."),
    ({"Actions": []}, "MissingParameter", None),
    ({"AWSAccountIds": []}, "InvalidParameterValue",
     "Value [] for parameter PrincipalId is invalid. Reason: Unable to verify."),
    ({"AWSAccountIds": ["12345"]}, "InvalidParameterValue", None),
])
def test_add_permission_refusals_are_sqs_errors_and_change_nothing(
    stack: Stack, params: dict[str, Any], code: str, text: str | None
) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    stack.a.add_permission(QueueUrl=url, Label="dup", AWSAccountIds=[B], Actions=["*"])
    policy = stack.a.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]
    call = {"QueueUrl": url, "Label": "new", "AWSAccountIds": [C],
            "Actions": ["SendMessage"], **params}
    with pytest.raises(ClientError) as caught:
        stack.a.add_permission(**call)
    assert caught.value.response["Error"]["Code"] == code
    if text is not None:
        assert caught.value.response["Error"]["Message"] == text
    assert stack.a.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])[
        "Attributes"] == policy


def test_remove_permission_of_an_unknown_label_is_refused(stack: Stack) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    with pytest.raises(ClientError) as caught:
        stack.a.remove_permission(QueueUrl=url, Label="nope")
    assert caught.value.response["Error"]["Message"] == (
        "Value nope for parameter Label is invalid. Reason: can't find label.")


def test_add_permission_keeps_a_policy_set_by_hand(stack: Stack) -> None:
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    mine = {"Version": "2012-10-17", "Id": "mine", "Statement": {
        "Sid": "own", "Effect": "Allow", "Principal": {"AWS": C}, "Action": "sqs:ReceiveMessage"}}
    stack.a.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(mine)})
    stack.a.add_permission(QueueUrl=url, Label="b", AWSAccountIds=[B], Actions=["SendMessage"])
    policy = json.loads(stack.a.get_queue_attributes(
        QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Id"] == "mine"
    assert [s["Sid"] for s in policy["Statement"]] == ["own", "b"]
    stack.b.send_message(QueueUrl=url, MessageBody="x")
    stack.c.receive_message(QueueUrl=url)


def test_add_and_remove_permission_speak_the_query_protocol_too(
    stack: Stack, tmp_path: Path
) -> None:
    client = query_client(ENDPOINT, tmp_path)
    b_query = query_client(ENDPOINT, tmp_path / "b",
                           credentials=(B_KEY.access_key, B_KEY.secret_key))

    def serve(request: Any, **_: Any) -> AWSResponse:
        from tests.harness import _Raw

        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = {k: (v.decode() if isinstance(v, bytes) else v)
                   for k, v in request.headers.items()}
        parts = urlsplit(request.url)
        headers.setdefault("Host", parts.netloc)
        response = stack.handler.handle(headers, body, ENDPOINT, method=request.method,
                                        query=parts.query, path=parts.path or "/")
        return AWSResponse(request.url, response.status, response.headers,
                           _Raw(response.body.encode()))

    client.meta.events.register("before-send.sqs.*", serve)
    b_query.meta.events.register("before-send.sqs.*", serve)
    url = client.create_queue(QueueName="orders")["QueueUrl"]
    with pytest.raises(ClientError) as denied:  # in XML: <Code>AccessDenied</Code>, 403
        b_query.send_message(QueueUrl=url, MessageBody="x")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    client.add_permission(QueueUrl=url, Label="q", AWSAccountIds=[B, C],
                          Actions=["SendMessage", "ReceiveMessage"])
    statement = json.loads(stack.a.get_queue_attributes(
        QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])["Statement"][0]
    assert statement["Action"] == ["SQS:SendMessage", "SQS:ReceiveMessage"]
    stack.c.send_message(QueueUrl=url, MessageBody="x")
    with pytest.raises(ClientError) as caught:
        client.add_permission(QueueUrl=url, Label="q", AWSAccountIds=[B], Actions=["*"])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    client.remove_permission(QueueUrl=url, Label="q")
    assert refused(stack.c.send_message, QueueUrl=url, MessageBody="x") == DENIED


# -- no route to another account's messages ----------------------------------------------


def test_a_forged_or_borrowed_receipt_handle_opens_and_deletes_nothing(stack: Stack) -> None:
    a_url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    b_url = stack.b.create_queue(QueueName="orders")["QueueUrl"]
    stack.a.send_message(QueueUrl=a_url, MessageBody="A's secret")
    (message,) = stack.a.receive_message(QueueUrl=a_url, VisibilityTimeout=0)["Messages"]
    handle = message["ReceiptHandle"]
    # on A's queue: B has no grant
    assert refused(stack.b.delete_message, QueueUrl=a_url, ReceiptHandle=handle) == DENIED
    # on B's own queue: the handle is bound to A's queue
    code, _ = refused(stack.b.delete_message, QueueUrl=b_url, ReceiptHandle=handle)
    assert code == "ReceiptHandleIsInvalid"
    code, _ = refused(stack.b.change_message_visibility, QueueUrl=b_url,
                      ReceiptHandle=handle, VisibilityTimeout=0)
    assert code in ("ReceiptHandleIsInvalid", "InvalidParameterValue")
    got = stack.a.receive_message(QueueUrl=a_url)["Messages"]
    assert [m["Body"] for m in got] == ["A's secret"]


def test_ciphertext_copied_into_another_accounts_queue_does_not_open(stack: Stack) -> None:
    a_url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    b_url = stack.b.create_queue(QueueName="orders")["QueueUrl"]
    stack.a.send_message(QueueUrl=a_url, MessageBody="A's secret")
    store = stack.ports.messages
    a_backing, b_backing = stack.queue(a_url).backing_url, stack.queue(b_url).backing_url
    (stolen,) = store.receive(a_backing, max_messages=1, visibility_timeout=0,
                              wait_seconds=0, attempt_id=None)
    store.send_batch(b_backing, [Outgoing("0", stolen.body)])
    assert "Messages" not in stack.b.receive_message(QueueUrl=b_url, MaxNumberOfMessages=10)
    assert stack.a.receive_message(QueueUrl=a_url)["Messages"][0]["Body"] == "A's secret"


def test_a_dead_letter_queue_must_be_in_the_source_queues_account(stack: Stack) -> None:
    a_dlq = stack.a.create_queue(QueueName="dead")["QueueUrl"]
    arn = stack.queue(a_dlq).arn
    stack.a.add_permission(QueueUrl=a_dlq, Label="all", AWSAccountIds=[B], Actions=["*"])
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 1})
    code, _ = refused(stack.b.create_queue, QueueName="src", Attributes={"RedrivePolicy": redrive})
    assert code == "InvalidParameterValue"
    b_src = stack.b.create_queue(QueueName="src")["QueueUrl"]
    code, _ = refused(stack.b.set_queue_attributes, QueueUrl=b_src,
                      Attributes={"RedrivePolicy": redrive})
    assert code == "InvalidParameterValue"
    assert "RedrivePolicy" not in stack.b.get_queue_attributes(
        QueueUrl=b_src, AttributeNames=["All"])["Attributes"]
    assert stack.a.list_dead_letter_source_queues(QueueUrl=a_dlq)["queueUrls"] == []


def test_a_revoked_grant_ends_everywhere_within_the_queue_cache_ttl(
    stack: Stack, clock: FakeClock
) -> None:
    other = container.build_frontend(settings.get(), ports=stack.ports, key_service=stack.keys,
                                     clock=clock, local_clock=clock)
    b_elsewhere = sqs_client(other, retries=1, credentials=B_KEY)
    url = stack.a.create_queue(QueueName="orders")["QueueUrl"]
    stack.a.add_permission(QueueUrl=url, Label="b", AWSAccountIds=[B], Actions=["SendMessage"])
    b_elsewhere.send_message(QueueUrl=url, MessageBody="cached the grant")
    stack.a.remove_permission(QueueUrl=url, Label="b")
    assert refused(stack.b.send_message, QueueUrl=url, MessageBody="x") == DENIED  # at once
    clock.advance(settings.get().queue_cache_ttl)
    assert refused(b_elsewhere.send_message, QueueUrl=url, MessageBody="x") == DENIED


def test_another_account_can_neither_start_nor_see_nor_cancel_a_move_task(
        stack: Stack) -> None:
    """Move tasks name queues by ARN, not URL: the task's queues must be the caller's own,
    whatever the owner's policy grants, and a refusal reveals and changes nothing
    (ResourceNotFoundException, as for a queue that does not exist)."""
    NOT_FOUND = ("ResourceNotFoundException", 404)
    dlq = stack.a.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = stack.a.get_queue_attributes(
        QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    source = stack.a.create_queue(QueueName="source", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})})["QueueUrl"]
    stack.a.add_permission(QueueUrl=dlq, Label="everything", AWSAccountIds=[B],
                           Actions=["*"])
    stack.a.send_message(QueueUrl=dlq, MessageBody="dead")
    own = stack.b.create_queue(QueueName="elsewhere")["QueueUrl"]
    own_arn = stack.b.get_queue_attributes(
        QueueUrl=own, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for params in ({"SourceArn": dlq_arn}, {"SourceArn": dlq_arn, "DestinationArn": own_arn}):
        assert refused(stack.b.start_message_move_task, **params) == NOT_FOUND
    assert stack.a.list_message_move_tasks(SourceArn=dlq_arn).get("Results", []) == []
    handle = stack.a.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert refused(stack.b.list_message_move_tasks, SourceArn=dlq_arn) == NOT_FOUND
    assert refused(stack.b.cancel_message_move_task, TaskHandle=handle) == NOT_FOUND
    [task] = stack.a.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
    assert task["SourceArn"] == dlq_arn and task["Status"] != "CANCELLING"
    assert source
