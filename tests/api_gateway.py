"""API Gateway's Lambda proxy events, built from real boto3 requests as AWS delivers them.

Every way an operator can put API Gateway in front of the handler is a :class:`Front`:
the REST API (payload format 1.0) on its stage URL, on an EDGE endpoint behind
CloudFront, on a custom domain with no base path or with one (``/sqs``, ``/v1/sqs``),
and the HTTP API with payload format 1.0. A boto3 client signs its request for the
front's URL; :func:`proxy_event` turns that request into the event API Gateway builds,
from AWS's documentation of the format:

- ``requestContext.path`` is the path the client requested: with the stage on the
  stage URL (``/api/...``), with the base path and without the stage on a custom domain
  (``/sqs/...``), bare on a custom domain without a base path; the HTTP API keeps a
  named stage in it too. The top-level ``path`` strips the stage on the stage URL only
  (on a custom domain it keeps the base path: API Gateway's known quirk).
- ``resource`` and ``requestContext.resourcePath`` are the route (``/{account}/{queue}``).
- ``headers`` holds the last value of each header, ``multiValueHeaders`` all of them;
  the HTTP API lowercases every name. API Gateway adds ``X-Forwarded-For``,
  ``X-Forwarded-Proto``, ``X-Forwarded-Port`` and rewrites ``X-Amzn-Trace-Id`` (its own
  segment as the parent, the client's root kept); an EDGE endpoint adds CloudFront's
  headers (``CloudFront-*``, ``Via``, ``X-Amz-Cf-Id``) and its address to
  ``X-Forwarded-For``.
- ``queryStringParameters`` holds the last value of each parameter, decoded;
  ``multiValueQueryStringParameters`` all of them.
- the body is text, or base64 with ``isBase64Encoded``.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.awsrequest import AWSResponse, HeadersDict

import app as sealq_app

API_ID = "a1b2c3d4e5"
REGION = "us-east-1"
EXECUTE_API = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
STAGE = "api"
CUSTOM_DOMAIN = "queues.example.com"
# Lambda refuses an invocation payload (the event) or a response over 6 MB.
LAMBDA_PAYLOAD_LIMIT = 6_291_456
CLIENT_IP = "203.0.113.7"
EDGE_IP = "130.176.1.23"  # a CloudFront edge's address


@dataclass(frozen=True)
class Front:
    """What stands between the client and the function."""

    name: str
    api: str = "REST"  # "REST" or "HTTP" (payload format 1.0)
    host: str = EXECUTE_API
    base_path: str = f"/{STAGE}"  # what precedes the API's routes in the client's URL
    edge: bool = False  # an EDGE endpoint: CloudFront in front
    lowercase: bool = False  # the client sent lowercase header names (HTTP/2)

    @property
    def url(self) -> str:
        return f"https://{self.host}{self.base_path}"

    @property
    def custom_domain(self) -> bool:
        return not self.host.endswith(".amazonaws.com")


FRONTS = [
    Front("rest-stage-url"),
    Front("rest-edge", edge=True),
    Front("rest-lowercase-headers", lowercase=True),
    Front("rest-custom-domain", host=CUSTOM_DOMAIN, base_path=""),
    Front("rest-custom-domain-sqs", host=CUSTOM_DOMAIN, base_path="/sqs"),
    Front("rest-custom-domain-v1-sqs", host=CUSTOM_DOMAIN, base_path="/v1/sqs"),
    Front("rest-edge-custom-domain-sqs", host=CUSTOM_DOMAIN, base_path="/sqs", edge=True),
    Front("http-stage-url", api="HTTP"),
    Front("http-custom-domain", api="HTTP", host=CUSTOM_DOMAIN, base_path=""),
    Front("http-custom-domain-v1-sqs", api="HTTP", host=CUSTOM_DOMAIN, base_path="/v1/sqs"),
]


class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the attributes libraries read)."""

    function_name = "sealq-APIHandler-TEST"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
    memory_limit_in_mb = 1769
    log_group_name = "/aws/lambda/sealq-APIHandler"
    log_stream_name = "2026/12/02/[$LATEST]0123456789abcdef"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def _trace_id() -> str:
    return f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"


def rewritten_trace_header(sent: str | None) -> str:
    """``X-Amzn-Trace-Id`` as API Gateway passes it on: the client's root (or a new
    one), API Gateway's own segment as the parent."""
    root = re.search(r"Root=([^;]+)", sent or "")
    return (f"Root={root.group(1) if root else _trace_id()};"
            f"Parent={uuid.uuid4().hex[:16]};Sampled=1")


def _header_pairs(request: Any) -> list[tuple[str, str]]:
    """The request's headers as sent, repeated ones included, in order."""
    headers = request.headers
    names = list(dict.fromkeys(headers.keys()))
    pairs: list[tuple[str, str]] = []
    for name in names:
        values = headers.get_all(name) if hasattr(headers, "get_all") else [headers[name]]
        for value in values:
            pairs.append((name, value.decode() if isinstance(value, bytes) else str(value)))
    return pairs


def proxy_event(front: Front, request: Any, *, base64_body: bool) -> dict[str, Any]:
    """The event API Gateway hands the function for ``request`` (a botocore request)."""
    url = urlsplit(request.url)
    assert url.netloc == front.host, (url.netloc, front.host)
    assert url.path == front.base_path or url.path.startswith(front.base_path + "/") or (
        front.base_path == ""), (url.path, front.base_path)
    route_path = url.path[len(front.base_path):] or "/"
    segments = [s for s in route_path.split("/") if s]
    resource, path_parameters = "/", None
    if len(segments) == 2:
        resource = "/{account}/{queue}"
        path_parameters = {"account": segments[0], "queue": segments[1]}
    pairs = [(k, v) for k, v in _header_pairs(request) if k.lower() != "host"]
    sent_trace = next((v for k, v in pairs if k.lower() == "x-amzn-trace-id"), None)
    pairs = [(k, v) for k, v in pairs if k.lower() != "x-amzn-trace-id"]
    pairs.insert(0, ("Host", front.host))
    forwarded_for = f"{CLIENT_IP}, {EDGE_IP}" if front.edge else CLIENT_IP
    pairs += [("X-Forwarded-For", forwarded_for), ("X-Forwarded-Proto", "https"),
              ("X-Forwarded-Port", "443"), ("X-Amzn-Trace-Id", rewritten_trace_header(
                  sent_trace))]
    if front.edge:
        pairs += [("CloudFront-Forwarded-Proto", "https"),
                  ("CloudFront-Is-Desktop-Viewer", "true"),
                  ("CloudFront-Is-Mobile-Viewer", "false"),
                  ("CloudFront-Is-SmartTV-Viewer", "false"),
                  ("CloudFront-Is-Tablet-Viewer", "false"),
                  ("CloudFront-Viewer-Country", "NL"),
                  ("Via", f"2.0 {uuid.uuid4().hex}.cloudfront.net (CloudFront)"),
                  ("X-Amz-Cf-Id", base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode())]
    if front.lowercase or front.api == "HTTP":
        pairs = [(k.lower(), v) for k, v in pairs]
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in pairs:
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    query_pairs = parse_qsl(url.query, keep_blank_values=True)
    query = {k: v for k, v in query_pairs} or None
    multi_query: dict[str, list[str]] = {}
    for name, value in query_pairs:
        multi_query.setdefault(name, []).append(value)
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    if front.api == "HTTP":
        top_path = url.path or "/"  # a named stage stays in it
    elif front.custom_domain:
        top_path = url.path or "/"  # the base path stays in it (API Gateway's quirk)
    else:
        top_path = route_path
    context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": API_ID,
        "domainName": front.host,
        "domainPrefix": front.host.split(".")[0],
        "extendedRequestId": uuid.uuid4().hex[:16],
        "httpMethod": request.method,
        "identity": {"sourceIp": CLIENT_IP, "userAgent": headers.get(
            "User-Agent", headers.get("user-agent")), "accessKey": None, "caller": None,
            "user": None, "userArn": None},
        "path": url.path or "/",
        "protocol": "HTTP/1.1",
        "requestId": str(uuid.uuid4()),
        "requestTimeEpoch": 1764700000000,
        "resourcePath": resource,
        "stage": STAGE,
    }
    if front.api == "REST":
        context["resourceId"] = "abc123"
    event: dict[str, Any] = {
        "resource": resource,
        "path": top_path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": context,
        "body": (base64.b64encode(body).decode() if base64_body else body.decode("utf-8"))
        if body else None,
        "isBase64Encoded": base64_body,
    }
    if front.api == "HTTP":
        event["version"] = "1.0"
    return event


def event_bytes(event: dict[str, Any]) -> int:
    """The invocation payload Lambda receives: the event as JSON."""
    return len(json.dumps(event).encode("utf-8"))


def response_bytes(answer: dict[str, Any]) -> int:
    """The proxy response as the Lambda runtime (python3.12+) writes it."""
    return len(json.dumps(answer, ensure_ascii=False).encode("utf-8"))


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class Gateway:
    """Answers a boto3 client's sends with ``app.app`` through ``front``'s events,
    alternating plain and base64 bodies (or always ``base64_body`` when given)."""

    front: Front
    base64_body: bool | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    _count: int = 0

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        encoded = self.base64_body if self.base64_body is not None else bool(self._count % 2)
        self._count += 1
        event = proxy_event(self.front, request, base64_body=encoded)
        return self.answer(request.url, event)

    def answer(self, url: str, event: dict[str, Any]) -> AWSResponse:
        assert event_bytes(event) <= LAMBDA_PAYLOAD_LIMIT, "Lambda would refuse the invoke"
        answer = sealq_app.app(event, LambdaContext())
        self.events.append(event)
        self.responses.append(answer)
        body = answer.get("body") or ""
        raw = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode("utf-8")
        headers = dict(answer.get("headers") or {})
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        return AWSResponse(url, answer["statusCode"], HeadersDict(headers), _Raw(raw))
