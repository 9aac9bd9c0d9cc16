"""The local stack's console: ``make run`` serves it at ``/console/`` beside the SQS API.

Accounts and their queues, live traffic and what the key caches save, and what is
stored for a queue, in a browser; for the local user only (:mod:`.gate`), read-only,
and never a message body, attribute value or key. Part of the local tools, never of
the Lambda package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3

from chalicelib.aws.clients import Clients
from chalicelib.clock import SYSTEM_CLOCK
from chalicelib.handler.container import aws_ports
from chalicelib.observability import process as telemetry
from chalicelib.settings import Settings
from tools.local.console.gate import Gate
from tools.local.console.live import Live
from tools.local.console.server import Console, claims
from tools.local.console.stored import MotoStore
from tools.local.console.views import Stores

__all__ = ["Console", "build_console", "claims"]


def build_console(conf: Settings, port: int, *, embedded: bool, stack: Mapping[str, Any],
          session: boto3.session.Session | None = None, host: str = "127.0.0.1") -> Console:
    """The console of the stack serving on ``port``, over the stores ``conf`` names;
    its live sampler runs until :meth:`Console.stop`. ``embedded``: the stack's moto
    runs in this process, so the stored view can read its store."""
    clients = Clients(session or boto3.session.Session(), conf.region, conf.aws_endpoint)
    live = Live(lambda: telemetry.get().totals(), SYSTEM_CLOCK)
    live.start()
    return Console(Gate(port, host=host), Stores.of(conf, aws_ports(conf, clients)), live,
                   MotoStore(conf.region) if embedded else None, stack)
