"""sealq's Chalice app: the SQS-compatible API, the key service and the delivery function
(triggers). Thin by design.

All logic lives in ``chalicelib``; the composition root (``chalicelib.handler.container``)
builds each container lazily on its first request, so nothing here calls AWS at
import time and ``chalice package`` can import it without credentials.

Every Lambda function imports this module, so it imports no function's tree at the
top: each function imports its own on first use, and the key service never loads the
handler's (protocol, auth, the encryption SDK, storage) at cold start.
"""

from __future__ import annotations

import logging
from typing import Any

from chalice import Chalice, Response


class SealqApp(Chalice):
    """Chalice's REST handler, plus the handler's asynchronous invocations of itself
    (message move tasks), which are not API Gateway events. Only the API function
    enters here (the key service is its own ``lambda_function``)."""

    def __call__(self, event: Any, context: Any) -> Any:
        from chalicelib.handler import container, gateway

        if container.is_move_task_event(event):
            return container.serve_move_task(event, context)
        # A content type the route does not accept: SQS's 415, not Chalice's own.
        refused = gateway.refusal(event, self.routes)
        if refused is not None:
            return refused
        return super().__call__(event, context)


app = SealqApp(app_name="sealq")
app.log.setLevel(logging.INFO)

CONTENT_TYPES = [
    "application/x-amz-json-1.0",
    "application/x-www-form-urlencoded",
    "application/json",
]


def _serve() -> Response:
    from chalicelib.handler import container, gateway

    request = app.current_request
    assert request is not None  # Chalice sets it for every route call
    body = request.raw_body
    result = container.serve_http(
        gateway.request_headers(request.to_original_event()),
        body.encode("utf-8") if isinstance(body, str) else body,
        request.context,
        app.lambda_context,
        request.query_params,
    )
    response_headers: dict[str, str | list[str]] = dict(result.headers)
    return Response(body=result.body, status_code=result.status, headers=response_headers)


# GET serves the query protocol (``?Action=...``); POST both protocols.
@app.route("/", methods=["GET", "POST"], content_types=CONTENT_TYPES)
def root() -> Response:
    return _serve()


@app.route("/{account}/{queue}", methods=["GET", "POST"], content_types=CONTENT_TYPES)
def queue_path(account: str, queue: str) -> Response:
    return _serve()


@app.lambda_function(name="key_service")
def key_service(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.keyservice import process  # the key service's tree only

    return process.serve(event, context)


@app.lambda_function(name="delivery")
def delivery(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Triggers: the event source mappings on backing queues invoke this."""
    from chalicelib.delivery import process  # the delivery function's tree only

    return process.serve(event, context)
