"""Tenants' functions, invoked as an event source mapping invokes them: synchronously.

A tenant's function is invoked with the delivery function's role (``lambda:InvokeFunction``)
and, for a function in another account, only where that function's own resource
policy lets the role invoke it (the second lock, as a key policy is for a CMK). A
refused or failed invoke is the batch's failure, never an error of the delivery.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from chalicelib.delivery.deliver import Invocation
from chalicelib.storage import functions
from chalicelib.storage.errors import StorageError

log = logging.getLogger("sealq.delivery")


class LambdaTargets:
    """Invokes tenants' Lambda functions (a deployed stack)."""

    def __init__(self, client: Any) -> None:
        self._lambda = client

    def invoke(self, function: str, event: Mapping[str, Any]) -> Invocation:
        if function.startswith("python:"):
            return Invocation(error="LocalTargetOnly")  # only the local stack runs these
        try:
            answer = functions.invoke(self._lambda, function, event)
        except StorageError as err:
            log.warning("trigger function could not be invoked: %s %s", type(err).__name__,
                        err.code)
            return Invocation(error=err.code or type(err).__name__)
        if answer.function_error:
            return Invocation(error=answer.function_error)
        return Invocation(payload=_decoded(answer.body))


def _decoded(body: bytes) -> Any:
    """The function's response; text Lambda cannot read as JSON stays text (which a
    partial batch response treats as a failed batch)."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")
