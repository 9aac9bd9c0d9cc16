"""What every action works with: who is asking, and the container's domain services.

An action is ``(services, caller, params) -> result``: ``params`` are the request's
JSON-1.0-shaped parameters (either protocol's), the result a value of
:mod:`chalicelib.domain.results`. Each group of actions keeps its own table
(:func:`registrar`); :mod:`chalicelib.domain.actions` dispatches over all of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib import errors
from chalicelib.domain.messages.receipts import Receipts
from chalicelib.domain.messages.receiving import Receiver
from chalicelib.domain.messages.sending import Sender
from chalicelib.domain.movetasks.tasks import MoveTasks
from chalicelib.domain.params import require_str
from chalicelib.domain.queues.records import Queue
from chalicelib.domain.queues.registry import Registry
from chalicelib.domain.queues.rules import parse_queue_url
from chalicelib.domain.results import Budget, Result


@dataclass(frozen=True)
class Caller:
    """Who is asking (the account) and the base URL queue URLs are built on."""

    account: str
    base_url: str
    # time.monotonic() by which the answer must be out; None: no limit.
    deadline: float | None = None
    # The request came over TLS (the policy condition key aws:SecureTransport).
    secure: bool = False
    # Another account's queue (account, name) this request was authorized for.
    granted: tuple[str, str] | None = None
    # The response's room for received messages, measured by the protocol answered.
    budget: Budget | None = None
    # The request's X-Amzn-Trace-Id header: a sent message's AWSTraceHeader unless it
    # names its own (AWS does the same, recorded).
    trace_header: str | None = None

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


@dataclass(frozen=True)
class Services:
    """A handler container's domain: queues, messages and (where configured) move tasks."""

    registry: Registry
    sender: Sender
    receiver: Receiver
    receipts: Receipts
    moves: MoveTasks | None = None

    def queue(self, caller: Caller, params: dict[str, Any]) -> Queue:
        """The queue a QueueUrl names: the caller's own, or one it was authorized for."""
        named = named_queue(caller, require_str(params, "QueueUrl"))
        if named is None or (named[0] != caller.account and named != caller.granted):
            raise errors.queue_does_not_exist()
        return self.registry.get(*named)

    def moves_or_fail(self) -> MoveTasks:
        if self.moves is None:
            raise errors.unsupported_operation("Message move tasks are not configured.")
        return self.moves


def named_queue(caller: Caller, url: object) -> tuple[str, str] | None:
    """(account, name) of a QueueUrl; AWS also takes a bare queue name, in the caller's
    own account."""
    if isinstance(url, str) and "/" not in url and url:
        return caller.account, url
    return parse_queue_url(url)


type Handler = Callable[[Services, Caller, dict[str, Any]], Result]


def registrar(table: dict[str, Handler]) -> Callable[[str], Callable[[Handler], Handler]]:
    """``@action("SendMessage")`` puts a function into ``table`` under that operation."""

    def action(name: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            table[name] = fn
            return fn

        return register

    return action
