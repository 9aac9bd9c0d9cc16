"""boto3 clients, created lazily once per container and shared across threads.

boto3 client creation is not thread-safe, so it happens under a lock; the clients
themselves are. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from botocore.config import Config

from chalicelib import settings

_lock = threading.Lock()
_clients: dict[str, Any] = {}
# botocore logs request and response bodies at DEBUG, KMS's plaintext data keys
# among them: sealq never lets those loggers go below INFO (invariant 2).
_SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50)


def client(service: str) -> Any:
    """The shared boto3 client for ``service`` at the configured endpoint."""
    with _lock:
        found = _clients.get(service)
        if found is None:
            quiet_sdk_loggers()
            conf = settings.get()
            session = boto3.session.Session()
            found = session.client(
                service,
                region_name=conf.region,
                endpoint_url=conf.aws_endpoint,
                config=_CONFIG,
            )
            _clients[service] = found
        return found


def clear_clients() -> None:
    """Drop every client (tests start each moto backend with fresh clients)."""
    with _lock:
        _clients.clear()


def quiet_sdk_loggers() -> None:
    """Keep the AWS SDK's wire logging (which would show key material) switched off."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
