"""A Lambda function invoked synchronously (RequestResponse): the key service, a
tenant's trigger function. What the invoke answers is the caller's to read."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.storage.translate import translating


@dataclass(frozen=True)
class Answer:
    # Lambda's FunctionError (the function raised, timed out or ran out of memory).
    function_error: str | None
    body: bytes


def invoke(client: Any, function: str, payload: Mapping[str, Any]) -> Answer:
    """Invoke ``function`` with ``payload`` as JSON; a refused invoke raises StorageError."""
    with translating("lambda"):
        answer = client.invoke(FunctionName=function, InvocationType="RequestResponse",
                               Payload=json.dumps(payload).encode("utf-8"))
        body = answer["Payload"].read()
    error = answer.get("FunctionError")
    return Answer(str(error) if error else None, body)
