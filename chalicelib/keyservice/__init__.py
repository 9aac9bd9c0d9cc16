"""The key service's entry points: the Lambda handler and the handlers' client.

Both are built lazily from :mod:`chalicelib.settings` and the shared boto3
clients on first use; nothing here touches AWS or the environment at import.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from chalicelib import aws, settings
from chalicelib.clock import SYSTEM_CLOCK
from chalicelib.keyservice.api import DataKey, KeyService, KeyServiceError
from chalicelib.keyservice.kms import INTERNAL_FAILURE, INTERNAL_MESSAGE
from chalicelib.keyservice.service import KeyServiceCore
from chalicelib.keyservice.transport import (
    InProcessTransport,
    KeyServiceClient,
    LambdaTransport,
    Transport,
)

__all__ = [
    "DataKey",
    "KeyService",
    "KeyServiceClient",
    "KeyServiceCore",
    "KeyServiceError",
    "clear_caches",
    "default_client",
    "default_core",
    "handle",
]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_core: KeyServiceCore | None = None
_client: KeyServiceClient | None = None


def default_core() -> KeyServiceCore:
    """This container's key service, configured from settings (created once)."""
    global _core
    with _lock:
        if _core is None:
            conf = settings.get()
            _core = KeyServiceCore(
                kms=aws.client("kms"),
                dynamodb=aws.client("dynamodb"),
                table=conf.keys_table,
                default_kms_key=conf.default_kms_key,
                clock=SYSTEM_CLOCK,
                cache_size=conf.key_service_cache_size,
                decrypt_ttl=conf.decrypt_key_ttl,
            )
        return _core


def handle(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """The key-service Lambda: one wire-format request in, one answer out; never raises."""
    try:
        core = default_core()
    except Exception as err:  # bad settings must still give a wire-format answer
        log.error("key service could not start: %s", type(err).__name__)
        return {"error": {"code": INTERNAL_FAILURE, "message": INTERNAL_MESSAGE}}
    return core.handle(event)


def default_client() -> KeyServiceClient:
    """The handlers' client: Lambda Invoke if a function is configured, else in-process."""
    global _client
    with _lock:
        if _client is not None:
            return _client
    function = settings.get().key_service_function
    transport: Transport = (
        LambdaTransport(function, aws.client("lambda"))
        if function
        else InProcessTransport(default_core())
    )
    with _lock:
        if _client is None:
            _client = KeyServiceClient(transport)
        return _client


def clear_caches() -> None:
    """Forget the default core and client, with every cached key (tests, moto resets)."""
    global _core, _client
    with _lock:
        _core = None
        _client = None
