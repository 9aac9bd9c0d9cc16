"""Who may open the console: the local user, who holds the token printed at start-up.

As Jupyter does it: the URL the dev server prints carries a random token once
(``/console/?token=...``); the console answers it with a redirect to the same page
without the token and an ``HttpOnly``, ``SameSite=Strict`` cookie holding it, so the
token leaves the address bar, history and any ``Referer``. Every request must then
bring the cookie, and also:

- come from a loopback address (whatever address the SQS API listens on);
- name a loopback host in ``Host`` (a page on another site that rebinds its name to
  127.0.0.1 reaches the port, but neither with that host nor with the cookie);
- be a ``GET`` or ``HEAD``: the console only reads.

Anything else is refused (401 without a valid token, 403 for a foreign peer or host,
405 for another method) and nothing is read for it.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

PREFIX = "/console"
TOKEN_PARAMETER = "token"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Decision:
    """``status`` 200 lets the request through; anything else is the answer itself."""

    status: int
    reason: str = ""
    headers: Mapping[str, str] | None = None


ALLOWED = Decision(200)


class Gate:
    """The console's door, for one server: its port and its token."""

    def __init__(self, port: int, token: str | None = None, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host  # the loopback name the printed URL uses
        self.token = token or new_token()
        # Cookies are not scoped by port: two local stacks on one host keep theirs apart.
        self.cookie = f"sealq_console_{port}"

    def url(self) -> str:
        """The address to print: the console with its token."""
        query = urlencode({TOKEN_PARAMETER: self.token})
        return f"http://{self.host}:{self.port}{PREFIX}/?{query}"

    def check(self, method: str, target: str, headers: Mapping[str, str], peer: str
              ) -> Decision:
        if not _loopback(peer):
            return Decision(403, "The console answers on this machine only.")
        if not self._local_host(_header(headers, "host")):
            return Decision(403, "The console answers to a loopback host name only.")
        if method not in ("GET", "HEAD"):
            return Decision(405, "The console only reads: GET or HEAD.", {"Allow": "GET, HEAD"})
        parts = urlsplit(target)
        query = parse_qsl(parts.query, keep_blank_values=True)
        offered = [value for name, value in query if name == TOKEN_PARAMETER]
        if offered:
            if not self._valid(offered[-1]):
                return Decision(401, "That console token is not this server's.")
            rest = [(name, value) for name, value in query if name != TOKEN_PARAMETER]
            location = parts.path + (f"?{urlencode(rest)}" if rest else "")
            return Decision(303, "", {"Location": location, "Set-Cookie": self._set_cookie()})
        if self._valid(self._cookie_of(headers)):
            return ALLOWED
        return Decision(401, "Open the console with the URL the dev server printed "
                             "(it carries this run's token).")

    def _valid(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(
            candidate.encode("utf-8", "replace"), self.token.encode())

    def _set_cookie(self) -> str:
        return (f"{self.cookie}={self.token}; Path={PREFIX}; HttpOnly; SameSite=Strict")

    def _cookie_of(self, headers: Mapping[str, str]) -> str | None:
        raw = _header(headers, "cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(self.cookie)
        return morsel.value if morsel is not None else None

    def _local_host(self, host: str | None) -> bool:
        if not host:
            return False
        return host.lower() in {f"{name}:{self.port}" for name in _LOOPBACK_NAMES}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _loopback(peer: str) -> bool:
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)
