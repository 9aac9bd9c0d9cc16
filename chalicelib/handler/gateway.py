"""What API Gateway hands the function, read as the client sent it.

Chalice routes the proxy event; two things of its reading are not what an SQS client
needs. ``headers`` keeps only the last value of a header sent twice, while the
client's signature covers every value (``multiValueHeaders`` has them). And a content
type the route does not accept gets Chalice's own ``415 {"Code":
"UnsupportedMediaType"}``, which no SQS client parses: here it is SQS's error, the one
the local server (``tools.local.httpserver``) gives for the same request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.errors import CORAL_NAMESPACE, SqsError


def content_type_matches(content_type: str, accepted: Sequence[str]) -> bool:
    """Chalice's rule for a route's ``content_types``: any listed media type matches."""
    if not accepted:
        return True
    wanted = {item.lower() for item in accepted}
    if "*/*" in wanted or "*/*" in content_type.lower():
        return True
    parts = {part.strip() for part in re.split("[,;]", content_type.lower())}
    return bool(wanted & parts)


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> SqsError:
    return SqsError(
        "UnknownOperationException",
        f"The content type {content_type} is not valid for this endpoint; use one of "
        f"{', '.join(accepted)}.",
        query_code="InvalidAction",
        status=415,
        namespace=CORAL_NAMESPACE,
    )


def request_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Every header of the request, a repeated one's values joined by commas (as SigV4
    canonicalizes them); from ``multiValueHeaders`` where the event has it."""
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if values:
            headers[str(name)] = ",".join(str(v) for v in values)
    return headers


def refusal(event: Mapping[str, Any], routes: Mapping[str, Mapping[str, Any]]
            ) -> dict[str, Any] | None:
    """The proxy response for a content type the event's route does not accept (SQS's
    ``415``, in JSON 1.0); None when the route accepts it or the event names no route."""
    from chalicelib.protocol import json10

    context = event.get("requestContext") or {}
    entry = routes.get(str(context.get("resourcePath")), {}).get(str(context.get("httpMethod")))
    accepted = list(getattr(entry, "content_types", None) or [])
    if not accepted:
        return None
    lowered = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    content_type = lowered.get("content-type", "application/json")
    if content_type_matches(content_type, accepted):
        return None
    response = json10.failure(unsupported_media_type(content_type[:100], accepted),
                              json10.new_request_id())
    return {"statusCode": response.status, "headers": dict(response.headers),
            "body": response.body}
