"""The key-service Lambda's own container, built on first use from the environment.

It imports the key service's tree only (boto3, the key records, KMS), never the message
handler's (protocol, auth, the encryption SDK, storage): a key-service cold start pays
for nothing it does not run. The handler side reaches this through
:mod:`chalicelib.handler.container`, which re-exports what it needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

from chalicelib import settings as settings_module
from chalicelib.aws.clients import Clients
from chalicelib.clock import SYSTEM_CLOCK, Clock
from chalicelib.keyservice.core import KeyServiceCore
from chalicelib.keyservice.kms import INTERNAL_FAILURE, INTERNAL_MESSAGE
from chalicelib.keyservice.transport import InProcessTransport, KeyServiceClient, LambdaTransport
from chalicelib.observability import process as telemetry
from chalicelib.observability.logs import lambda_ids, log_context
from chalicelib.observability.metrics import NO_METRICS, Metrics
from chalicelib.settings import Settings, SettingsError

log = logging.getLogger("sealq.container")


def key_service_core(
    conf: Settings, clients: Clients, *, clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep, metrics: Metrics = NO_METRICS,
) -> KeyServiceCore:
    """The key service (the only part that calls KMS) of one container."""
    return KeyServiceCore(
        kms=clients.get("kms"),
        dynamodb=clients.get("key_records"),
        table=conf.keys_table,
        default_kms_key=conf.default_kms_key,
        clock=clock,
        cache_size=conf.key_service_cache_size,
        decrypt_ttl=conf.decrypt_key_ttl,
        sleep=sleep,
        metrics=metrics,
    )


def client(
    conf: Settings, clients: Clients, *, clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], None] = time.sleep, metrics: Metrics = NO_METRICS,
) -> KeyServiceClient:
    """How a handler or delivery container reaches the key service: Lambda Invoke when
    deployed, else in-process.

    In Lambda those functions have no KMS permission, so running the key service
    inside them would fail every request: that configuration refuses to start.
    """
    if conf.key_service_function:
        return KeyServiceClient(LambdaTransport(conf.key_service_function,
                                                clients.get("key_service")), metrics)
    if conf.lambda_function_name:
        raise SettingsError(
            "SEALQ_KEY_SERVICE_FUNCTION is empty: in Lambda the handler must invoke the "
            "key-service function (it has no KMS permission of its own)"
        )
    return KeyServiceClient(InProcessTransport(key_service_core(
        conf, clients, clock=clock, sleep=sleep, metrics=metrics)), metrics)


_lock = threading.Lock()
_core: KeyServiceCore | None = None


def core() -> KeyServiceCore:
    """This process's key service (the key-service Lambda), built on first use."""
    global _core
    with _lock:
        if _core is None:
            conf = settings_module.get()
            clients = Clients(boto3.session.Session(), conf.region, conf.aws_endpoint)
            _core = key_service_core(conf, clients, metrics=telemetry.get())
        return _core


def reset() -> None:
    """Forget this process's key service (tests; a moto backend reset)."""
    global _core
    with _lock:
        _core = None


def serve(event: dict[str, Any], lambda_context: Any = None) -> dict[str, Any]:
    """The key-service Lambda: one wire-format request in, one answer out; never raises.
    Its log lines carry the Lambda request id; its metrics are flushed after each one."""
    with log_context(**lambda_ids(lambda_context)):
        try:
            service = core()
        except Exception as err:  # noqa: BLE001 - bad settings still give a wire-format answer
            log.error("key service could not start: %s", type(err).__name__)
            return {"error": {"code": INTERNAL_FAILURE, "message": INTERNAL_MESSAGE}}
        try:
            return service.handle(event)
        finally:
            telemetry.flush()
