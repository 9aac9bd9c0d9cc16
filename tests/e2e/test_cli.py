"""sealq through the AWS CLI, unmodified: ``aws sqs ... --endpoint-url``.

Each CLI call costs about a second, so tests here follow one queue through a
whole story; test_boto3.py covers the same behaviour case by case.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e import md5_hex, md5_of_message_attributes

pytestmark = pytest.mark.e2e

CliRunner = Callable[..., tuple[int, str, str]]
NameFactory = Callable[[str], str]
# The AWS CLI exits 254 on a service error (v2, and v1 since 1.19); older v1 used 255.
CLI_ERROR_EXITS = (254, 255)


def ok(result: tuple[int, str, str]) -> dict[str, Any]:
    """The JSON output of a call that must succeed ({} when the CLI printed nothing)."""
    rc, out, err = result
    assert rc == 0, f"exit {rc}: {err}"
    return json.loads(out) if out.strip() else {}


def fails(result: tuple[int, str, str], *codes: str) -> str:
    """Assert a service error with one of ``codes`` in stderr; return stderr."""
    rc, out, err = result
    assert rc in CLI_ERROR_EXITS, f"exit {rc}: {out} {err}"
    assert any(f"({code})" in err for code in codes), err
    return err


def test_cli_create_queue_with_kms_attributes_and_read_them_back(
    aws_cli: CliRunner, queue_name: NameFactory, sealq_endpoint: str
) -> None:
    name = queue_name("cli-kms")
    url = ok(
        aws_cli(
            "sqs",
            "create-queue",
            "--queue-name",
            name,
            "--attributes",
            "KmsMasterKeyId=alias/sealq-default,KmsDataKeyReusePeriodSeconds=300",
        )
    )["QueueUrl"]
    assert re.fullmatch(re.escape(sealq_endpoint) + r"/\d{12}/" + re.escape(name), url)
    account = url.rsplit("/", 2)[1]

    everything = ok(
        aws_cli("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All")
    )["Attributes"]
    assert everything["KmsMasterKeyId"] == "alias/sealq-default"
    assert everything["KmsDataKeyReusePeriodSeconds"] == "300"
    assert everything["QueueArn"] == f"arn:aws:sqs:us-east-1:{account}:{name}"

    chosen = ok(
        aws_cli(
            "sqs",
            "get-queue-attributes",
            "--queue-url",
            url,
            "--attribute-names",
            "QueueArn",
            "KmsMasterKeyId",
            "KmsDataKeyReusePeriodSeconds",
        )
    )["Attributes"]
    assert chosen == {
        "QueueArn": f"arn:aws:sqs:us-east-1:{account}:{name}",
        "KmsMasterKeyId": "alias/sealq-default",
        "KmsDataKeyReusePeriodSeconds": "300",
    }


def test_cli_create_queue_then_get_queue_url_list_queues_and_delete_queue(
    aws_cli: CliRunner, queue_name: NameFactory
) -> None:
    prefix = queue_name("cli-list")
    first = ok(aws_cli("sqs", "create-queue", "--queue-name", f"{prefix}-1"))["QueueUrl"]
    second = ok(aws_cli("sqs", "create-queue", "--queue-name", f"{prefix}-2"))["QueueUrl"]
    assert ok(aws_cli("sqs", "get-queue-url", "--queue-name", f"{prefix}-1"))["QueueUrl"] == first

    listed = ok(aws_cli("sqs", "list-queues", "--queue-name-prefix", prefix))
    assert sorted(listed["QueueUrls"]) == sorted([first, second])

    ok(aws_cli("sqs", "delete-queue", "--queue-url", first))
    fails(
        aws_cli("sqs", "get-queue-url", "--queue-name", f"{prefix}-1"),
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
    )
    listed = ok(aws_cli("sqs", "list-queues", "--queue-name-prefix", prefix))
    assert listed["QueueUrls"] == [second]


def test_cli_send_receive_and_delete_a_message_with_attributes(
    aws_cli: CliRunner, queue_name: NameFactory
) -> None:
    url = ok(aws_cli("sqs", "create-queue", "--queue-name", queue_name("cli-msg")))["QueueUrl"]
    body = "h\u00e9llo from the CLI \u2713"
    # AWS CLI v1 sends a Binary attribute's string as its raw bytes (no base64 decoding).
    attributes: dict[str, dict[str, Any]] = {
        "color": {"DataType": "String", "StringValue": "blue"},
        "count": {"DataType": "Number", "StringValue": "7"},
        "blob": {"DataType": "Binary", "BinaryValue": "raw-bytes"},
    }
    as_sent: dict[str, dict[str, Any]] = {
        **attributes,
        "blob": {"DataType": "Binary", "BinaryValue": b"raw-bytes"},
    }
    sent = ok(
        aws_cli(
            "sqs",
            "send-message",
            "--queue-url",
            url,
            "--message-body",
            body,
            "--message-attributes",
            json.dumps(attributes),
        )
    )
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert sent["MD5OfMessageAttributes"] == md5_of_message_attributes(as_sent)
    assert sent["MessageId"]

    received = ok(
        aws_cli(
            "sqs",
            "receive-message",
            "--queue-url",
            url,
            "--message-attribute-names",
            "All",
            "--visibility-timeout",
            "0",
            "--wait-time-seconds",
            "5",
        )
    )
    (message,) = received["Messages"]
    assert message["Body"] == body
    assert message["MD5OfBody"] == md5_hex(body)
    assert message["MessageId"] == sent["MessageId"]
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    returned = message["MessageAttributes"]
    assert returned["color"] == attributes["color"]
    assert returned["count"] == attributes["count"]
    # The CLI prints blobs base64-encoded.
    assert base64.b64decode(returned["blob"]["BinaryValue"]) == b"raw-bytes"

    ok(
        aws_cli(
            "sqs",
            "delete-message",
            "--queue-url",
            url,
            "--receipt-handle",
            message["ReceiptHandle"],
        )
    )
    after = ok(
        aws_cli(
            "sqs",
            "receive-message",
            "--queue-url",
            url,
            "--visibility-timeout",
            "0",
            "--wait-time-seconds",
            "2",
        )
    )
    assert after.get("Messages", []) == []


def test_cli_errors_exit_nonzero_with_the_sqs_code(
    aws_cli: CliRunner, queue_name: NameFactory
) -> None:
    fails(
        aws_cli("sqs", "get-queue-url", "--queue-name", queue_name("cli-missing")),
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
    )

    url = ok(aws_cli("sqs", "create-queue", "--queue-name", queue_name("cli-err")))["QueueUrl"]
    fails(
        aws_cli("sqs", "delete-message", "--queue-url", url, "--receipt-handle", "forged"),
        "ReceiptHandleIsInvalid",
    )

    unknown = url.rsplit("/", 1)[0] + "/" + queue_name("cli-unknown")
    fails(
        aws_cli("sqs", "send-message", "--queue-url", unknown, "--message-body", "x"),
        "QueueDoesNotExist",
        "AWS.SimpleQueueService.NonExistentQueue",
    )


def test_cli_invalid_reuse_period_is_refused_and_creates_nothing(
    aws_cli: CliRunner, queue_name: NameFactory
) -> None:
    name = queue_name("cli-bad")
    fails(
        aws_cli(
            "sqs",
            "create-queue",
            "--queue-name",
            name,
            "--attributes",
            "KmsMasterKeyId=alias/sealq-default,KmsDataKeyReusePeriodSeconds=59",
        ),
        "InvalidAttributeValue",
    )
    listed = ok(aws_cli("sqs", "list-queues", "--queue-name-prefix", name))
    assert listed.get("QueueUrls", []) == []
