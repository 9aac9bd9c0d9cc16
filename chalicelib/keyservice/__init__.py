"""The key service (the patent's metadata service): contract, core, transports.

Containers are built by the composition root (:mod:`chalicelib.handler.container`);
nothing here touches AWS or the environment at import.
"""

from __future__ import annotations

from chalicelib.keyservice.api import DataKey, KeyService, KeyServiceError
from chalicelib.keyservice.core import KeyServiceCore
from chalicelib.keyservice.transport import KeyServiceClient

__all__ = [
    "DataKey",
    "KeyService",
    "KeyServiceClient",
    "KeyServiceCore",
    "KeyServiceError",
]
