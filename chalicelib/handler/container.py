"""The composition root: one place builds a container's object graph.

From one settings value, one boto3 session, a clock and a sleeper it builds the
storage adapters, the key service (client, or in-process core), the caches, the
domain and the frontend. Nothing below reads the environment or the settings
module; tests build containers with their own values and reset one thing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3

from chalicelib import errors
from chalicelib import settings as settings_module
from chalicelib.auth.cmks import AllowedKeys
from chalicelib.auth.keys import AccessKeyCache
from chalicelib.auth.sigv4 import Verifier
from chalicelib.aws.clients import Clients
from chalicelib.clock import MONOTONIC_CLOCK, SYSTEM_CLOCK, Clock
from chalicelib.domain.actions import Actions
from chalicelib.domain.context import Services
from chalicelib.domain.messages.receipts import Receipts
from chalicelib.domain.messages.sending import Sender
from chalicelib.domain.messages.services import message_services
from chalicelib.domain.movetasks.tasks import Dispatch, MoveTasks
from chalicelib.domain.movetasks.worker import MOVE_TASK_EVENT
from chalicelib.domain.queues.registry import Registry
from chalicelib.handler.frontend import Frontend, deadline_from
from chalicelib.keyservice import process as key_service_process
from chalicelib.keyservice.api import KeyService, SecretService
from chalicelib.keyservice.core import KeyServiceCore
from chalicelib.observability import process as telemetry
from chalicelib.observability.logs import lambda_ids, log_context
from chalicelib.observability.metrics import NO_METRICS, Metrics
from chalicelib.protocol import json10
from chalicelib.protocol.json10 import HttpResponse
from chalicelib.settings import Settings, SettingsError
from chalicelib.storage.accounts import DynamoAccountStore
from chalicelib.storage.backing import SqsMessageStore
from chalicelib.storage.mappings import LambdaMappings
from chalicelib.storage.move_tasks import DynamoMoveTaskStore
from chalicelib.storage.payloads import S3PayloadStore
from chalicelib.storage.ports import (
    AccountStore,
    EventSourceMappings,
    MessageStore,
    MoveTaskStore,
    PayloadStore,
    QuarantineStore,
    QueueTable,
)
from chalicelib.storage.quarantine import S3QuarantineStore
from chalicelib.storage.queue_table import DynamoQueueTable
from chalicelib.storage.translate import translating

log = logging.getLogger("sealq.container")


@dataclass(frozen=True)
class Ports:
    """The storage a handler container reaches AWS through."""

    queues: QueueTable
    messages: MessageStore
    payloads: PayloadStore
    quarantine: QuarantineStore
    accounts: AccountStore
    tasks: MoveTaskStore
    # Triggers' event source mappings, on a deployed stack (a deleted queue's go too).
    mappings: EventSourceMappings | None = None


def aws_ports(conf: Settings, clients: Clients) -> Ports:
    return Ports(
        queues=DynamoQueueTable(clients.get("queues"), conf.queues_table),
        messages=SqsMessageStore(clients.get("messages"), poll_client=clients.get("long_poll"),
                                 prefix=conf.backing_queue_prefix),
        payloads=S3PayloadStore(clients.get("payloads"), conf.payload_bucket),
        quarantine=S3QuarantineStore(clients.get("payloads"), conf.payload_bucket),
        accounts=DynamoAccountStore(clients.get("accounts"), conf.accounts_table),
        tasks=DynamoMoveTaskStore(clients.get("queues"), conf.queues_table),
        mappings=LambdaMappings(clients.get("mappings"), conf.delivery_function)
        if conf.delivery_function else None,
    )


def build_frontend(
    conf: Settings,
    *,
    ports: Ports,
    key_service: KeyService,
    clock: Clock = SYSTEM_CLOCK,
    local_clock: Clock = MONOTONIC_CLOCK,
    secrets: SecretService | None = None,
    auth_clock: Clock = SYSTEM_CLOCK,
    metrics: Metrics = NO_METRICS,
    sleep: Callable[[float], None] = time.sleep,
    dispatch: Dispatch | None = None,
) -> Frontend:
    """A handler container's domain and frontend over the given ports and key service.

    ``secrets`` opens access keys' sealed secrets (by default ``key_service``, which
    must then implement :class:`SecretService`); ``auth_clock`` is the wall clock that
    requests' X-Amz-Date is checked against (the clients', never a test's fake clock).
    ``dispatch`` starts a message move task's worker (default: a background thread).
    """
    if secrets is None:
        if not isinstance(key_service, SecretService):
            raise TypeError("the key service cannot open access-key secrets: pass secrets=")
        secrets = key_service
    verifier = Verifier(
        AccessKeyCache(ports.accounts, secrets, clock=local_clock, ttl=conf.auth_cache_ttl,
                       max_entries=conf.handler_cache_size),
        region=conf.region,
        clock=auth_clock,
    )
    registry = Registry(
        ports.queues,
        ports.messages,
        region=conf.region,
        default_cmk=conf.default_kms_key,
        clock=clock,
        local_clock=local_clock,
        cache_ttl=conf.queue_cache_ttl,
        # Tenant-bound CMKs: read as access keys are, at most every auth_cache_ttl.
        key_policy=AllowedKeys(ports.accounts, default_cmk=conf.default_kms_key,
                               clock=local_clock, ttl=conf.auth_cache_ttl,
                               max_entries=conf.handler_cache_size),
        mappings=ports.mappings,
    )
    found = message_services(conf, key_service=key_service, redrive=registry.redrive,
                             messages=ports.messages, payloads=ports.payloads,
                             quarantine=ports.quarantine, clock=clock, metrics=metrics)
    sender = Sender(found.sealer, found.stored, found.opener, found.secrets)
    moves = MoveTasks(registry, sender, found.stored, found.quarantine, ports.tasks,
                      clock=clock, sleep=sleep, dispatch=dispatch, metrics=metrics)
    if dispatch is None:
        moves.dispatch = thread_dispatch(moves)
    services = Services(registry, sender, found.receiver,
                        Receipts(found.stored, found.secrets), moves)
    return Frontend(Actions(services), verifier=verifier,
                    receive_limit=conf.receive_response_limit, public_url=conf.public_url,
                    metrics=metrics)


def thread_dispatch(moves: MoveTasks) -> Dispatch:
    """Local runs: each move task's worker on a background thread of this process."""

    def work(event: dict[str, Any]) -> None:
        try:
            moves.run(event)
        except Exception as err:  # noqa: BLE001 - a thread has no caller to tell
            log.error("move task worker failed: %s", type(err).__name__)

    def dispatch(event: dict[str, Any]) -> None:
        threading.Thread(target=work, args=(event,), name="sealq-move-task", daemon=True).start()

    return dispatch


def lambda_dispatch(function_name: str, client: Any) -> Dispatch:
    """In AWS: an asynchronous invoke of this handler's own function (it needs
    ``lambda:InvokeFunction`` on itself); Lambda retries a failed run twice. A refused
    invoke leaves as a StorageError (a throttle: retryable), never as a ClientError."""

    def dispatch(event: dict[str, Any]) -> None:
        with translating("lambda"):
            client.invoke(FunctionName=function_name, InvocationType="Event",
                          Payload=json.dumps(event).encode("utf-8"))

    return dispatch


def build_handler(
    conf: Settings,
    session: boto3.session.Session,
    *,
    clock: Clock = SYSTEM_CLOCK,
    local_clock: Clock = MONOTONIC_CLOCK,
    sleep: Callable[[float], None] = time.sleep,
    metrics: Metrics = NO_METRICS,
) -> Frontend:
    """A handler container on AWS (or an AWS endpoint such as moto)."""
    clients = Clients(session, conf.region, conf.aws_endpoint)
    return build_frontend(
        conf,
        ports=aws_ports(conf, clients),
        key_service=key_service_process.client(conf, clients, clock=clock, sleep=sleep,
                                       metrics=metrics),
        clock=clock,
        local_clock=local_clock,
        metrics=metrics,
        sleep=sleep,
        dispatch=(lambda_dispatch(conf.lambda_function_name, clients.get("move_tasks"))
                  if conf.lambda_function_name else None),
    )


# -- the process's own container (Lambda, the local server) ------------------------

_lock = threading.Lock()
_handler: Frontend | None = None


def handler() -> Frontend:
    """This process's handler container, built from the environment on first use."""
    global _handler
    with _lock:
        if _handler is None:
            _handler = build_handler(settings_module.get(), boto3.session.Session(),
                                     metrics=telemetry.get())
        return _handler


def core() -> KeyServiceCore:
    """This process's key service (the key-service Lambda), built on first use."""
    return key_service_process.core()


def reset() -> None:
    """Forget the process's containers, counters and settings (tests; a moto reset)."""
    global _handler
    with _lock:
        _handler = None
    key_service_process.reset()
    telemetry.reset()
    settings_module.reset()


def serve_key_service(event: dict[str, Any], lambda_context: Any = None) -> dict[str, Any]:
    """The key-service Lambda: one wire-format request in, one answer out; never raises."""
    return key_service_process.serve(event, lambda_context)


def is_move_task_event(event: Any) -> bool:
    return isinstance(event, dict) and MOVE_TASK_EVENT in event


def serve_move_task(event: dict[str, Any], lambda_context: Any) -> None:
    """The handler's own asynchronous invocation: work on one message move task.

    A failure propagates, so Lambda retries the event (the worker resumes from the
    stored task; see :mod:`chalicelib.domain.movetasks.tasks`)."""
    with log_context(**lambda_ids(lambda_context)):
        try:
            handler().actions.services.moves_or_fail().run(event, deadline_from(lambda_context))
        except Exception as err:
            log.error("move task worker failed: %s", type(err).__name__)
            raise
        finally:
            telemetry.flush()


def canonical_query(params: Any) -> str:
    """The query string of Lambda's decoded query parameters (a Chalice MultiDict or a
    mapping), percent-encoded as SigV4 canonicalizes it."""
    if not params:
        return ""
    getlist = getattr(params, "getlist", None)
    pairs = [(k, v) for k in params for v in (getlist(k) if getlist else [params[k]])]
    return "&".join(f"{quote(str(k), safe='-_.~')}={quote(str(v), safe='-_.~')}"
                    for k, v in pairs)


def serve_http(
    headers: Mapping[str, str], body: bytes | None, context: Mapping[str, Any],
    lambda_context: Any, query_params: Any = None,
) -> HttpResponse:
    """One API request on this process's handler container; never raises.

    The path checked against the signature is ``context["path"]``: behind an API
    Gateway stage that is the stage-prefixed path the client signed.
    """
    with log_context(**lambda_ids(lambda_context, context)):
        try:
            frontend = handler()
        except SettingsError as err:  # the operator's message: it names the setting
            log.error("handler cannot start: %s", err)
            return json10.failure(errors.internal_failure(), json10.new_request_id())
        except Exception as err:  # noqa: BLE001
            log.error("handler cannot start: %s", type(err).__name__)
            return json10.failure(errors.internal_failure(), json10.new_request_id())
        try:
            return frontend.handle(
                headers, body, frontend.base_url(headers, context),
                deadline_from(lambda_context), method=str(context.get("httpMethod") or "POST"),
                path=str(context.get("path") or "/"), query=canonical_query(query_params),
            )
        finally:
            telemetry.flush()
