"""The local server's HTTP layer: keep-alive latency next to its own moto, limits, errors.

Times are only ever compared with times measured in the same test, never with a constant.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.conftest import CREDENTIALS, EXTERNAL_ENDPOINT, REGION, Server

pytestmark = pytest.mark.e2e

ROUNDS = 20


def _one_connection_client(endpoint: str, credentials: dict[str, str] = CREDENTIALS) -> Any:
    """boto3 with a pool of one: every request reuses the same keep-alive connection."""
    return boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    ).client(
        "sqs",
        endpoint_url=endpoint,
        config=Config(
            max_pool_connections=1,
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def test_small_requests_on_a_keep_alive_connection_are_not_held_back(
    sealq_server: Server, queue_name: Callable[[str], str]
) -> None:
    """Guards against the delayed-ACK stall (~40 ms per small response, ~7x moto).

    The same client shape sends the same small messages to sealq and straight to
    the moto behind it, interleaved; sealq's median must stay within 3x moto's.
    """
    if sealq_server.aws_endpoint is None:
        pytest.skip("the server's AWS endpoint is unknown")
    sealq = _one_connection_client(sealq_server.url, sealq_server.credentials)
    direct = _one_connection_client(sealq_server.aws_endpoint)
    sealq_url = sealq.create_queue(QueueName=queue_name("keepalive"))["QueueUrl"]
    direct_url = direct.create_queue(QueueName=queue_name("direct"))["QueueUrl"]

    def timed(client: Any, url: str) -> float:
        began = time.perf_counter()
        client.send_message(QueueUrl=url, MessageBody="small")
        return time.perf_counter() - began

    for _ in range(2):  # warm both connections and sealq's caches
        timed(sealq, sealq_url)
        timed(direct, direct_url)
    through_sealq, straight = [], []
    for _ in range(ROUNDS):
        through_sealq.append(timed(sealq, sealq_url))
        straight.append(timed(direct, direct_url))

    ratio = statistics.median(through_sealq) / statistics.median(straight)
    assert ratio <= 3, f"sealq median is {ratio:.1f}x moto's on one keep-alive connection"


@pytest.mark.parametrize(
    ("method", "path", "content_type", "status"),
    [
        ("PUT", "/", "application/x-amz-json-1.0", 405),
        ("POST", "/not/a/queue/path", "application/x-amz-json-1.0", 404),
        ("POST", "/", "text/plain", 415),
    ],
)
def test_what_no_route_serves_gets_an_sqs_error(
    sealq_endpoint: str, method: str, path: str, content_type: str, status: int
) -> None:
    if EXTERNAL_ENDPOINT:
        pytest.skip("the local server's own answers; API Gateway answers these itself")
    host, port = sealq_endpoint.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(
            method,
            path,
            body=b"{}",
            headers={"Content-Type": content_type, "X-Amz-Target": "AmazonSQS.ListQueues"},
        )
        response = conn.getresponse()
        payload = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == status
    assert payload["__type"] == "com.amazon.coral.service#UnknownOperationException"
    assert response.getheader("x-amzn-query-error") == "InvalidAction;Sender"
