"""A real botocore SQS client answered in-process with a response sealq's protocol
code built, so tests exercise botocore's own parser and error factory."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.config import Config

from chalicelib.protocol import json10

MODEL = Path(botocore.__file__).parent / "data" / "sqs" / "2012-11-05" / "service-2.json.gz"


def botocore_model() -> dict[str, Any]:
    with gzip.open(MODEL) as fh:
        loaded: dict[str, Any] = json.load(fh)
    return loaded


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def aws_response(resp: json10.HttpResponse) -> AWSResponse:
    headers = HeadersDict(resp.headers)
    return AWSResponse("https://sealq.test/", resp.status, headers, _Raw(resp.body.encode("utf-8")))


def make_client() -> Any:
    """A real SQS client; no call leaves the process once ``answer_with`` is set."""
    return boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url="https://sealq.test",
        config=Config(retries={"total_max_attempts": 1}),
    )


def answer_with(client: Any, resp: json10.HttpResponse) -> list[Any]:
    """Make every call on ``client`` get ``resp``; returns the requests seen."""
    seen: list[Any] = []

    def hook(request: Any, **_: Any) -> AWSResponse:
        seen.append(request)
        return aws_response(resp)

    client.meta.events.register("before-send.sqs.*", hook)
    return seen
