"""The deployment's secrets (receipt-handle and deduplication keys), from the key service.

Each is created once fleet-wide under the service's default CMK and held here for the
container's life; a failure to get one is the SQS error the key service's answer maps to.
"""

from __future__ import annotations

import threading

from chalicelib.domain.failures import key_service_error
from chalicelib.keyservice.api import KeyService, KeyServiceError


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
                    raise key_service_error(err) from None
                self._values[name] = found
            return found
