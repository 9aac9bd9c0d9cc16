"""Plain-HTTP requests to one endpoint on the standard library's ``http.client``.

The local stack's backing calls (moto, LocalStack: ``http://`` and no proxy) go
here instead of botocore's urllib3 session, which costs about twice as much CPU
per request for the same bytes (its header dictionaries and proxy lookups). What
the urllib3 session promises is kept:

- a pool of idle keep-alive connections (LIFO, bounded), each checked for a close
  by the server before it is reused;
- the connect and read timeouts of the client's configuration, ``TCP_NODELAY``;
- failures as botocore raises them (``EndpointConnectionError``,
  ``ConnectTimeoutError``, ``ReadTimeoutError``, ``ConnectionClosedError``), so the
  client's retry handler and sealq's error translation treat them the same.

TLS endpoints and proxies stay on the client's own session (CA bundle, proxy
configuration), see :class:`~chalicelib.storage.leancalls.LeanCalls`.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)


class _Body:
    """The read body, as the ``raw`` an AWSResponse reads its content from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> list[bytes]:
        return [self._data]


class _Connection(http.client.HTTPConnection):
    """Connects within the connect timeout, then reads within the read timeout."""

    def __init__(self, host: str, port: int | None, connect_timeout: float,
                 read_timeout: float) -> None:
        super().__init__(host, port, timeout=read_timeout)
        self._connect_timeout = connect_timeout

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), self._connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(self.timeout)


def _dropped(connection: _Connection) -> bool:
    """Whether the server closed (or wrote to) an idle connection: it cannot be reused."""
    sock = connection.sock
    if sock is None:
        return True
    poller = select.poll()  # not select(): a busy process may hold descriptors past 1024
    poller.register(sock, select.POLLIN)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True


class PlainHttp:
    """Sends prepared requests to ``endpoint_url`` (``http://`` only); thread-safe."""

    def __init__(self, endpoint_url: str, *, connect_timeout: float, read_timeout: float,
                 max_idle: int = 10) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError("PlainHttp serves http:// endpoints only")
        self._url = endpoint_url
        self._host = parts.hostname
        self._port = parts.port
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_idle = max_idle
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def send(self, request: AWSPreparedRequest) -> AWSResponse:
        """One request and its whole response; botocore's exceptions when either fails."""
        connection = self._take()
        target = urlsplit(request.url)
        path = target.path or "/"
        if target.query:
            path += "?" + target.query
        try:
            if connection.sock is None:
                try:
                    connection.connect()
                except TimeoutError as err:
                    raise ConnectTimeoutError(endpoint_url=self._url, error=err) from None
                except OSError as err:
                    raise EndpointConnectionError(endpoint_url=self._url, error=err) from None
            try:
                connection.request(request.method, path, body=request.body,
                                   headers=dict(request.headers.items()))
                response = connection.getresponse()
                data = response.read()
            except TimeoutError as err:
                raise ReadTimeoutError(endpoint_url=self._url, error=err) from None
            except (http.client.HTTPException, OSError) as err:
                raise ConnectionClosedError(endpoint_url=self._url, error=err) from None
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(connection)
        headers = HTTPHeaders.from_pairs(response.getheaders())
        return AWSResponse(request.url, response.status, headers, _Body(data))

    def _take(self) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return _Connection(self._host, self._port, self._connect_timeout,
                                   self._read_timeout)
            if not _dropped(connection):
                return connection
            connection.close()

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()
