"""The HTTP edge of a handler container: request in, SQS response out, never a traceback.

Everything the container keeps warm (key cache, queue cache, secrets, clients) is
built lazily on the first request, never at import time, and dropped by
:func:`clear_caches` (tests start a fresh moto backend for each case).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Mapping
from typing import Any

from chalicelib import keyservice, settings
from chalicelib.actions import Actions, Caller
from chalicelib.clock import SYSTEM_CLOCK, Clock
from chalicelib.keycache import HandlerKeyCache
from chalicelib.keyservice.api import KeyService, KeyServiceError
from chalicelib.messages import Messages, kms_failure
from chalicelib.protocol import errors, json10
from chalicelib.queues import Registry
from chalicelib.sealing import Sealer

log = logging.getLogger("sealq.frontend")


class ServiceSecrets:
    """Deployment secrets from the key service, held for the container's life."""

    def __init__(self, service: KeyService) -> None:
        self._service = service
        self._values: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str) -> bytes:
        with self._lock:
            found = self._values.get(name)
            if found is None:
                try:
                    found = self._service.service_secret(name)
                except KeyServiceError as err:
                    raise kms_failure(err) from None
                self._values[name] = found
            return found


class Frontend:
    def __init__(self, actions: Actions) -> None:
        self.actions = actions

    def handle(
        self, headers: Mapping[str, str], body: bytes | None, base_url: str
    ) -> json10.HttpResponse:
        request_id = json10.new_request_id()
        try:
            request = json10.parse_request(headers, body)
            caller = Caller(account=settings.get().default_account, base_url=base_url)
            result = self.actions.dispatch(caller, request)
            return json10.success(result, request_id)
        except errors.SqsError as err:
            return json10.failure(err, request_id)
        except Exception as exc:  # noqa: BLE001 - the client gets InternalFailure, never a trace
            # Log where it failed, not the exception's text: it may quote a message.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error("request %s failed with %s\n%s", request_id, type(exc).__name__, frames)
            return json10.failure(errors.internal_failure(), request_id)


def build(key_service: KeyService, clock: Clock = SYSTEM_CLOCK) -> Frontend:
    """A handler container's object graph over a key service."""
    conf = settings.get()
    keys = HandlerKeyCache(
        key_service,
        clock=clock,
        max_entries=conf.handler_cache_size,
        decrypt_ttl=conf.decrypt_key_ttl,
    )
    messages = Messages(Sealer(keys), ServiceSecrets(key_service))
    return Frontend(Actions(Registry(clock=clock), messages))


_lock = threading.Lock()
_default: Frontend | None = None


def default() -> Frontend:
    global _default
    with _lock:
        if _default is None:
            _default = build(keyservice.default_client())
        return _default


def clear_caches() -> None:
    global _default
    with _lock:
        _default = None
    keyservice.clear_caches()


def base_url(headers: Mapping[str, str], context: Mapping[str, Any]) -> str:
    """Where clients reach this service, for queue URLs: configured, else from the request."""
    configured = settings.get().public_url
    if configured:
        return configured
    lowered = {k.lower(): v for k, v in headers.items()}
    host = lowered.get("host", "localhost")
    proto = lowered.get("x-forwarded-proto", "http")
    domain = str(context.get("domainName", ""))
    stage = str(context.get("stage", ""))
    if domain.endswith(".amazonaws.com") and stage:
        return f"https://{domain}/{stage}"
    return f"{proto}://{host}"
