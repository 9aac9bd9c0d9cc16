"""sealq's Chalice app: the SQS-compatible API and the key service. Thin by design.

All logic lives in ``chalicelib``; nothing here calls AWS at import time, so
``chalice package`` can import it without credentials.
"""

from __future__ import annotations

import logging
from typing import Any

from chalice import Chalice, Response

from chalicelib import frontend, keyservice

app = Chalice(app_name="sealq")
app.log.setLevel(logging.INFO)

CONTENT_TYPES = [
    "application/x-amz-json-1.0",
    "application/x-www-form-urlencoded",
    "application/json",
]


def _serve() -> Response:
    request = app.current_request
    assert request is not None  # Chalice sets it for every route call
    headers = dict(request.headers)
    body = request.raw_body
    result = frontend.default().handle(
        headers,
        body.encode("utf-8") if isinstance(body, str) else body,
        frontend.base_url(headers, request.context),
    )
    response_headers: dict[str, str | list[str]] = dict(result.headers)
    return Response(body=result.body, status_code=result.status, headers=response_headers)


@app.route("/", methods=["POST"], content_types=CONTENT_TYPES)
def root() -> Response:
    return _serve()


@app.route("/{account}/{queue}", methods=["POST"], content_types=CONTENT_TYPES)
def queue_path(account: str, queue: str) -> Response:
    return _serve()


@app.lambda_function(name="key_service")
def key_service(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return keyservice.handle(event, context)
