"""boto3 clients of one container: one session, each client created lazily once.

Every client comes from the container's one ``boto3.session.Session`` (a session
loads the service models once; a session per client costs ~150 ms each) with the
timeouts and retry budget of :mod:`chalicelib.timeouts` for its role. boto3 client
creation is not thread-safe, so it happens under a lock; the clients themselves are.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import boto3
from botocore.config import Config

from chalicelib import timeouts
from chalicelib.aws import service_model
from chalicelib.observability.logs import QUIET_LOGGERS

# Every client keeps its connections alive (pooled by urllib3, TCP keep-alive on) and
# may hold as many as the local server's threads use at once.
_POOL = {"max_pool_connections": 50, "tcp_keepalive": True}
# role -> (service, budget): a role is one use of a service with its own timeouts.
ROLES: dict[str, tuple[str, timeouts.CallBudget]] = {
    "queues": ("dynamodb", timeouts.QUEUE_TABLE),
    "accounts": ("dynamodb", timeouts.QUEUE_TABLE),
    "messages": ("sqs", timeouts.MESSAGES),
    "long_poll": ("sqs", timeouts.LONG_POLL),
    "payloads": ("s3", timeouts.PAYLOADS),
    "key_service": ("lambda", timeouts.KEY_SERVICE_INVOKE),
    # The handler's asynchronous invoke of itself (message move tasks): one short call.
    "move_tasks": ("lambda", timeouts.KEY_SERVICE_INVOKE),
    # The delivery function's synchronous invokes of tenants' functions (triggers).
    "triggers": ("lambda", timeouts.TRIGGER_INVOKE),
    # The operator's event source mappings (the admin command; deletes by the handler).
    "mappings": ("lambda", timeouts.QUEUE_TABLE),
    "kms": ("kms", timeouts.KMS),
    "key_records": ("dynamodb", timeouts.KEY_RECORDS),
}


class Clients:
    """The boto3 clients of a container, by role, from one session."""

    def __init__(self, session: boto3.session.Session, region: str, endpoint: str | None) -> None:
        self.session = session
        self._region = region
        self._endpoint = endpoint
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def get(self, role: str) -> Any:
        """The client for ``role`` (see :data:`ROLES`), created on first use."""
        with self._lock:
            found = self._clients.get(role)
            if found is None:
                quiet_sdk_loggers()
                service, budget = ROLES[role]
                config = Config(
                    connect_timeout=budget.connect, read_timeout=budget.read,
                    retries={"total_max_attempts": budget.attempts, "mode": "standard"},
                    **_POOL,
                )
                found = self.session.client(
                    service, region_name=self._region, endpoint_url=self._endpoint,
                    config=config,
                )
                self._clients[role] = found
                if service == "sqs":
                    # The protocol layer reads botocore's SQS model: this client has
                    # it loaded, so no container loads it a second time.
                    service_model.adopt(found.meta.service_model)
            return found


def quiet_sdk_loggers() -> None:
    """Keep the AWS SDK's wire logging (which would show key material) switched off:
    botocore logs request and response bodies at DEBUG, KMS's plaintext data keys
    among them, so those loggers never go below INFO (invariant 2)."""
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
