"""Cross-account access through the real server: a second tenant made with the operator's
command, the owner granting and taking back with the AWS CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib import settings
from tests.e2e.conftest import REGION, CliRunner, Server

pytestmark = pytest.mark.e2e


def _second_tenant(server: Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """``create-account`` on the server's own AWS endpoint, as the operator would run it."""
    if server.aws_endpoint is None:
        pytest.skip("the server's AWS endpoint is unknown")
    from tools.admin import cli as admin
    monkeypatch.setenv("SEALQ_AWS_ENDPOINT", server.aws_endpoint)
    settings.reset()
    ops = admin.accounts(settings.get())
    account = ops.create_account("e2e-tenant-b")
    return ops.create_access_key(account.account_id).as_json()


def _denied(call: Callable[..., Any], **params: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_second_tenant_reaches_a_queue_only_while_the_cli_grants_it(
    sealq_server: Server, sqs: Any, aws_cli: CliRunner, queue_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant = _second_tenant(sealq_server, monkeypatch)
    b = boto3.session.Session(
        aws_access_key_id=tenant["AccessKeyId"], aws_secret_access_key=tenant["SecretAccessKey"],
        region_name=REGION,
    ).client("sqs", endpoint_url=sealq_server.url,
             config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    url = sqs.create_queue(QueueName=queue_name("shared"))["QueueUrl"]
    assert _denied(b.send_message, QueueUrl=url, MessageBody="x") == ("AccessDenied", 403)
    assert url not in str(b.list_queues().get("QueueUrls", []))

    rc, _, err = aws_cli("sqs", "add-permission", "--queue-url", url, "--label", "tenant-b",
                         "--aws-account-ids", tenant["AccountId"], "--actions", "SendMessage")
    assert rc == 0, err
    b.send_message(QueueUrl=url, MessageBody="from tenant B")
    assert _denied(b.receive_message, QueueUrl=url) == ("AccessDenied", 403)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == [
        "from tenant B"]

    rc, _, err = aws_cli("sqs", "remove-permission", "--queue-url", url, "--label", "tenant-b")
    assert rc == 0, err
    assert _denied(b.send_message, QueueUrl=url, MessageBody="x") == ("AccessDenied", 403)
