"""Authentication through the real server: the sealq-local profile works, others do not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.conftest import REGION, CliRunner, Server

pytestmark = pytest.mark.e2e


def _client(endpoint: str, key_id: str, secret: str, region: str = REGION) -> Any:
    return boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region,
    ).client("sqs", endpoint_url=endpoint,
             config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def _code(call: Callable[..., Any], **params: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call(**params)
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_clients_without_the_local_key_are_refused_and_change_nothing(
    sealq_server: Server, sqs: Any, queue_name: Callable[[str], str]
) -> None:
    key = sealq_server.credentials
    key_id, secret = key["AWS_ACCESS_KEY_ID"], key["AWS_SECRET_ACCESS_KEY"]
    name = queue_name("refused")
    cases = {
        "wrong secret": (_client(sealq_server.url, key_id, "x" * 40),
                         ("SignatureDoesNotMatch", 403)),
        "unknown key": (_client(sealq_server.url, "AKIAUNKNOWNKEY000000", secret),
                        ("InvalidClientTokenId", 403)),
        "other region": (_client(sealq_server.url, key_id, secret, "eu-west-1"),
                         ("SignatureDoesNotMatch", 403)),
    }
    for label, (client, expected) in cases.items():
        assert _code(client.create_queue, QueueName=name) == expected, label
    assert name not in str(sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", []))


def test_the_cli_with_the_local_profile_is_served(aws_cli: CliRunner) -> None:
    rc, out, err = aws_cli("sqs", "list-queues")
    assert rc == 0, err

