"""The console's pages and JSON, behind its gate, on the local server's port.

``/console/`` is one static page (HTML, CSS, a script and a small SVG chart of the
project's own, all under ``static/``: nothing is fetched from elsewhere) that polls
three read-only JSON resources:

- ``/console/api/queues``: accounts and their queues (:mod:`tools.local.console.views`);
- ``/console/api/live``: requests, errors, cache ratios, KMS made against per message
  (:mod:`tools.local.console.live`);
- ``/console/api/stored/<account>/<queue>``: the queue's records at rest
  (:mod:`tools.local.console.stored`).

Every answer, refusals included, forbids caching, framing and any source but this
server (a strict Content-Security-Policy); the SQS API on the same port never sees
these paths, and no SQS path reaches the console.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from chalicelib.storage.errors import StorageError
from tools.local.console import stored, views
from tools.local.console.gate import PREFIX, Decision, Gate
from tools.local.console.live import Live

log = logging.getLogger("sealq.console")

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml",
          ".txt": "text/plain; charset=utf-8"}
_STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")
_STORED = re.compile(rf"{PREFIX}/api/stored/([^/]+)/([^/]+)")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
}

type Answer = tuple[int, dict[str, str], bytes]


def claims(target: str) -> bool:
    """Whether a request target is the console's (``/console`` and below)."""
    path = urlsplit(target).path
    return path == PREFIX or path.startswith(PREFIX + "/")


class Console:
    """The console of one local stack."""

    def __init__(self, gate: Gate, stores: views.Stores, live: Live,
                 reader: stored.StoreReader | None, stack: Mapping[str, Any]) -> None:
        self.gate = gate
        self._stores = stores
        self._live = live
        self._reader = reader
        self._stack = dict(stack)

    @property
    def url(self) -> str:
        """The console's address with this run's token, as the dev server prints it."""
        return self.gate.url()

    def claims(self, target: str) -> bool:
        return claims(target)

    def stop(self) -> None:
        self._live.stop()

    def answer(self, method: str, target: str, headers: Mapping[str, str], peer: str
               ) -> Answer:
        """The whole answer to one request: status, headers and body."""
        path = urlsplit(target).path
        decision = self.gate.check(method, target, headers, peer)
        if decision.status != 200:
            return _refusal(decision, path)
        try:
            return self._route(path)
        except StorageError as err:
            log.warning("console: the stores did not answer: %s %s", type(err).__name__,
                        err.code)
            return _json(503, {"error": f"the local stores did not answer ({err.code})"})
        except Exception as err:  # noqa: BLE001 - the console never answers with a trace
            log.error("console: %s failed: %s", path, type(err).__name__)
            return _json(500, {"error": f"the console failed ({type(err).__name__})"})

    def _route(self, path: str) -> Answer:
        if path == PREFIX:
            return 308, {"Location": PREFIX + "/"}, b""
        if path == PREFIX + "/":
            return _file("index.html")
        if path.startswith(PREFIX + "/static/"):
            return _file(path.removeprefix(PREFIX + "/static/"))
        if path == PREFIX + "/api/queues":
            return _json(200, {"stack": self._stack, **views.overview(self._stores)})
        if path == PREFIX + "/api/live":
            return _json(200, self._live.view())
        found = _STORED.fullmatch(path)
        if found:
            return self._stored(unquote(found[1]), unquote(found[2]))
        return _json(404, {"error": "no such console page"})

    def _stored(self, account: str, name: str) -> Answer:
        queue = self._stores.queue(account, name)
        if queue is None:
            return _json(404, {"error": "no such queue"})
        listed = views.queue_view(self._stores, queue, [])
        counts = {k: listed[k] for k in ("visible", "inFlight", "delayed")}
        body = stored.stored_view(self._reader, queue.backing_url, self._stores.ports.payloads,
                                  counts)
        return _json(200, {"queue": {k: listed[k] for k in ("account", "name", "arn", "type",
                                                            "cmk", "reusePeriod")}, **body})


def _headers(content_type: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Type": content_type, **(extra or {})}


def _json(status: int, value: Any) -> Answer:
    body = json.dumps(value, separators=(",", ":")).encode()
    return status, _headers("application/json"), body


def _file(name: str) -> Answer:
    path = STATIC / name
    if not _STATIC_NAME.fullmatch(name) or not path.is_file():
        return _json(404, {"error": "no such console file"})
    return 200, _headers(_TYPES.get(path.suffix, "application/octet-stream")), path.read_bytes()


def _refusal(decision: Decision, path: str) -> Answer:
    extra = dict(decision.headers or {})
    if decision.status == 303:
        return 303, _headers("text/plain; charset=utf-8", extra), b""
    if path.startswith(PREFIX + "/api/"):
        status, headers, body = _json(decision.status, {"error": decision.reason})
        return status, {**headers, **extra}, body
    page = (f"<!doctype html><meta charset=utf-8><title>sealq console</title>"
            f"<h1>sealq console</h1><p>{html.escape(decision.reason)}</p>").encode()
    return decision.status, _headers("text/html; charset=utf-8", extra), page
