"""The local HTTP front of ``make run``: a Chalice app served the way API Gateway fronts it.

Chalice's ``LocalDevServer`` runs the app (its ``LocalGateway`` builds the same
Lambda proxy event and context as ``chalice local``); this module replaces the
request handler around it, for three reasons:

- Speed: a response goes out as one buffered write (whole, up to 64 KiB) on a
  socket with ``TCP_NODELAY``. Chalice's handler writes headers and body as separate small
  segments with Nagle's algorithm on, so every small response on a keep-alive
  connection waited for the client's delayed ACK (~40 ms).
- Limits, as API Gateway enforces them: a body over 10 MB is refused before it is
  read, a body that stalls times out, a malformed ``Content-Length`` or an
  unsupported ``Transfer-Encoding`` is refused.
- Errors in SQS's shape (``__type``, ``message``, ``x-amzn-query-error``) for
  anything the app never sees: an unknown path or method, a content type the route
  does not accept, and every error the HTTP layer itself raises. (A GET of a route
  reaches the app, which answers one without an ``Action`` as AWS does.) A client can
  cause only 4xx answers here.

A refused request closes its connection: its body may be unread.

The local console (:mod:`tools.local.console`), when the dev server installs one, answers
``/console`` and below on the same port, behind its own gate; no request it claims
reaches the app, and none it does not claim reaches it.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any

from chalice.local import CustomLocalChalice, LocalChalice, LocalGateway, RouteMatcher

from chalicelib import errors
from chalicelib.errors import CORAL_NAMESPACE, SqsError
from chalicelib.handler.gateway import content_type_matches, unsupported_media_type
from chalicelib.protocol import json10

log = logging.getLogger("sealq.localhttp")

# API Gateway (REST) refuses request payloads above 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024
_DIGITS = re.compile(r"[0-9]+")
# Responses up to this size leave in one write (headers included).
_WRITE_BUFFER = 64 * 1024
# After refusing a request whose body is unread, read and drop what the client is
# still sending for at most this long, so it can see the answer rather than a reset.
_LINGER_SECONDS = 1.0


@dataclass(frozen=True)
class Limits:
    """What one connection may do; tests shorten the timeouts."""

    max_body: int = MAX_BODY_BYTES
    # Seconds a request body may go without a byte arriving.
    body_timeout: float = 10.0
    # Seconds a connection may wait for its next request line and headers.
    idle_timeout: float = 300.0


class Refused(Exception):
    """A request answered with an SQS error; its connection is closed afterwards."""

    def __init__(self, error: SqsError, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = dict(headers or {})


def _coral(code: str, message: str, status: int, query_code: str | None = None) -> SqsError:
    return SqsError(code, message, query_code=query_code, status=status, namespace=CORAL_NAMESPACE)


def unknown_path(method: str, path: str) -> SqsError:
    return _coral(
        "UnknownOperationException",
        f"No operation is served at {method} {path}: SQS requests are POST / or "
        "POST /{account}/{queue}.",
        404,
        "InvalidAction",
    )


def method_not_allowed(method: str, allowed: Sequence[str]) -> SqsError:
    return _coral(
        "UnknownOperationException",
        f"The method {method} is not valid for this endpoint; use {', '.join(allowed)}.",
        405,
        "InvalidAction",
    )


def request_too_large(limit: int) -> SqsError:
    # API Gateway's answer to a payload over its limit, in SQS's error shape.
    return _coral(
        "RequestEntityTooLargeException",
        f"Request Too Long: the body exceeds {limit} bytes.",
        413,
        "RequestEntityTooLarge",
    )


def request_timeout() -> SqsError:
    # botocore retries RequestTimeoutException as a transient error.
    return _coral(
        "RequestTimeoutException",
        "The request body was not received within the timeout period.",
        408,
        "RequestTimeout",
    )


def bad_request(message: str, status: int = 400) -> SqsError:
    return _coral("BadRequestException", message, status, "BadRequest")




def content_length(values: Sequence[str]) -> int:
    """The body length from every ``Content-Length`` header; 0 without one.

    Several headers must agree; anything but decimal digits is malformed.
    """
    lengths = set()
    for value in values:
        value = value.strip()
        if not _DIGITS.fullmatch(value):
            raise Refused(bad_request(f"Invalid Content-Length: {value[:40]!r}."))
        lengths.add(int(value))
    if len(lengths) > 1:
        raise Refused(bad_request("Conflicting Content-Length headers."))
    return lengths.pop() if lengths else 0


class SqsRequestHandler(BaseHTTPRequestHandler):
    """One connection: requests read within limits, answered by the app or refused."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = _WRITE_BUFFER

    def __init__(self, request: Any, client_address: Any, server: LocalHTTPServer) -> None:
        self.gateway = server.gateway
        self.matcher = server.matcher
        self.routes = server.app.routes
        self.limits = server.limits
        self.console = server.console
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.limits.idle_timeout)

    # -- reading --------------------------------------------------------------

    def _check(self) -> int:
        """Refuse what no route serves, before any of the body is read; return its length."""
        encoding = (self.headers.get("Transfer-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise Refused(
                bad_request("Transfer-Encoding is not supported: send Content-Length.", 411)
            )
        length = content_length(self.headers.get_all("Content-Length") or [])
        if length > self.limits.max_body:
            raise Refused(request_too_large(self.limits.max_body))
        try:
            route = self.matcher.match_route(self.path).route
        except ValueError:
            raise Refused(unknown_path(self.command, self.path.split("?")[0][:200])) from None
        entry = self.routes[route].get(self.command)
        if entry is None:
            allowed = sorted(self.routes[route])
            raise Refused(method_not_allowed(self.command, allowed), {"Allow": ", ".join(allowed)})
        content_type = self.headers.get("Content-Type", "application/json")
        if not content_type_matches(content_type, entry.content_types):
            raise Refused(unsupported_media_type(content_type[:100], entry.content_types))
        return length

    def _read_body(self, length: int) -> bytes | None:
        if length == 0:
            return None
        self.connection.settimeout(self.limits.body_timeout)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise Refused(request_timeout()) from None
        finally:
            self.connection.settimeout(self.limits.idle_timeout)
        if len(body) < length:
            raise Refused(bad_request("The request body is shorter than its Content-Length."))
        return body

    def handle_expect_100(self) -> bool:
        """Refuse before the client sends its body; else ask for it."""
        try:
            self._check()
        except Refused as refusal:
            self._refuse(refusal)
            return False
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    # -- answering ------------------------------------------------------------

    def _handle(self) -> None:
        if self.console is not None and self.console.claims(self.path):
            self._serve_console()
            return
        try:
            body = self._read_body(self._check())
        except Refused as refusal:
            self._refuse(refusal)
            return
        headers = dict(self.headers)
        try:
            response = self.gateway.handle_request(
                method=self.command, path=self.path, headers=headers, body=body
            )
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer, not drop
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("local gateway failed with %s\n%s", type(exc).__name__, frames)
            self._refuse(Refused(errors.internal_failure()))
            return
        out: dict[str, str | list[str]] = dict(response.get("headers") or {})
        out.update(response.get("multiValueHeaders") or {})
        payload = response.get("body")
        if payload is None:
            data = b""
        elif response.get("isBase64Encoded"):
            data = base64.b64decode(payload)
        elif isinstance(payload, str):
            data = payload.encode("utf-8")
        else:
            data = payload
        self._write(int(response["statusCode"]), out, data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def _serve_console(self) -> None:
        """The console's answer; it reads no body, so a request with one ends its connection."""
        unread = bool(self.headers.get("Transfer-Encoding")) or (
            self.headers.get("Content-Length", "0").strip() not in ("", "0"))
        try:
            status, headers, body = self.console.answer(
                self.command, self.path, dict(self.headers.items()), self.client_address[0])
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer, not drop
            log.error("console failed with %s", type(exc).__name__)
            status, headers, body = 500, {"Content-Type": "text/plain"}, b"console failed"
        self._write(status, headers, body, close=unread)
        if unread:
            self.close_connection = True

    def _write(
        self,
        status: int,
        headers: Mapping[str, str | list[str]],
        body: bytes,
        close: bool = False,
    ) -> None:
        """Status line, headers and body in one write (one segment train, no matter the size)."""
        self.send_response(status)
        if not any(name.lower() == "content-type" for name in headers):
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            if name.lower() in ("content-length", "connection"):
                continue
            for item in value if isinstance(value, list) else [value]:
                self.send_header(name, item)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
        lines = getattr(self, "_headers_buffer", [])  # none for HTTP/0.9: no head at all
        head = b"".join([*lines, b"\r\n"]) if lines else b""
        self._headers_buffer: list[bytes] = []
        self.wfile.write(head + body if self.command != "HEAD" and body else head)
        self.wfile.flush()

    def _refuse(self, refusal: Refused) -> None:
        """Answer with the error and close: part of the request may still be unread."""
        response = json10.failure(refusal.error, json10.new_request_id())
        headers: dict[str, str | list[str]] = {**response.headers, **refusal.headers}
        self._write(response.status, headers, response.body.encode("utf-8"), close=True)
        self.close_connection = True
        self._linger()

    def _linger(self) -> None:
        """Drop what the client still sends for a moment, then let the socket close."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    break
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access log line, at DEBUG only: the app already logs one line per request
        (action, status, latency), and a write to stderr per request costs more than
        Chalice's whole routing."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug('%s "%s" %s', self.address_string(), self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """The HTTP layer's own messages (timeouts, malformed requests) through logging."""
        log.info("%s " + format, self.address_string(), *args)

    def send_error(
        self, code: int, message: str | None = None, explain: str | None = None
    ) -> None:
        """The HTTP layer's own errors (bad request line, header limits) in SQS's shape.

        An unknown method is 405, not the standard library's 501, and nothing here is 5xx.
        """
        if code == 501:
            error = method_not_allowed(self.command or "?", ["POST"])
        else:
            status = code if 400 <= code < 500 else 400
            error = bad_request(message or self.responses.get(code, ("Bad Request",))[0], status)
        self.log_error("code %d, message %s", error.status, message)
        # A request line that did not parse leaves HTTP/0.9, which has no status line.
        self.request_version = self.protocol_version
        self._refuse(Refused(error))


class LocalHTTPServer(ThreadingMixIn, HTTPServer):
    """One thread per connection, as ``chalice local``; one gateway for all of them."""

    daemon_threads = True
    # Many clients connecting at once must not see dropped SYNs (the default is 5).
    request_queue_size = 128
    # The local console (tools.local.console.Console), set by the dev server once bound.
    console: Any = None

    def __init__(self, address: tuple[str, int], app: Any, config: Any, limits: Limits) -> None:
        self.app = as_local(app)
        self.gateway = LocalGateway(self.app, config)
        self.matcher = RouteMatcher(list(self.app.routes))
        self.limits = limits
        super().__init__(address, SqsRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up or stops reading is routine: one line, no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.info("connection from %s ended: %s", client_address[0], type(error).__name__)
            return
        super().handle_error(request, client_address)


def as_local(app: Any) -> Any:
    """The app with a thread-local ``current_request``, as ``chalice local`` rebases it.

    Doing that twice to one app would make its class its own base, so an app already
    converted is returned as it is.
    """
    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return app
