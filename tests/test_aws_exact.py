"""Where sealq matches AWS to the letter (issue "AWS-exact SQS"), seen through boto3."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.clock import FakeClock
from tests.harness import Fleet


@pytest.fixture
def sqs(stack: None, clock: FakeClock) -> Any:
    return Fleet(clock).sqs()


def test_message_attribute_filters_take_asterisk_and_prefixes_as_aws_does(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="filters", Attributes={"VisibilityTimeout": "0"})[
        "QueueUrl"
    ]
    sqs.send_message(QueueUrl=url, MessageBody="msg", MessageAttributes={
        "Help.Me": {"DataType": "String", "StringValue": "Me"},
        "Hello": {"DataType": "String", "StringValue": "There"},
        "General": {"DataType": "String", "StringValue": "Kenobi"},
    })

    def names(filters: list[str]) -> set[str]:
        got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=filters)["Messages"][0]
        return set(got.get("MessageAttributes", {}))

    assert names(["*"]) == {"Help.Me", "Hello", "General"}
    assert names([".*"]) == {"Help.Me", "Hello", "General"}
    assert names(["Hel.*"]) == {"Help.Me", "Hello"}
    assert names(["Foo", "Help"]) == set()
