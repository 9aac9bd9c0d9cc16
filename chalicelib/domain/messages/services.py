"""The message services a container opens and seals with, built once for every root.

The handler (:mod:`chalicelib.handler.container`) and the delivery function
(:mod:`chalicelib.delivery.process`) open stored messages the same way: the tier-1
key cache over the key service, one sealer, the stored-message reader, the
quarantine and the receiver. Each root adds its own: the handler sends, deletes
and moves; the delivery function hands opened messages to tenants' functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.clock import Clock
from chalicelib.crypto.keycache import HandlerKeyCache
from chalicelib.crypto.sealing import Sealer
from chalicelib.domain.messages.opening import Opener
from chalicelib.domain.messages.quarantine import Quarantine
from chalicelib.domain.messages.receiving import Receiver
from chalicelib.domain.messages.stored import StoredMessages
from chalicelib.domain.queues.redrive import Redrive
from chalicelib.domain.secrets import ServiceSecrets
from chalicelib.keyservice.api import KeyService
from chalicelib.observability.metrics import Metrics
from chalicelib.storage.ports import MessageStore, PayloadStore, QuarantineStore

if TYPE_CHECKING:
    from chalicelib.settings import Settings


@dataclass(frozen=True)
class MessageServices:
    sealer: Sealer
    stored: StoredMessages
    opener: Opener
    quarantine: Quarantine
    receiver: Receiver
    secrets: ServiceSecrets


def message_services(
    conf: Settings, *, key_service: KeyService, redrive: Redrive, messages: MessageStore,
    payloads: PayloadStore, quarantine: QuarantineStore, clock: Clock, metrics: Metrics,
) -> MessageServices:
    keys = HandlerKeyCache(key_service, clock=clock, max_entries=conf.handler_cache_size,
                           decrypt_ttl=conf.decrypt_key_ttl, metrics=metrics)
    sealer = Sealer(keys, metrics)
    stored = StoredMessages(messages, payloads, inline_limit=conf.inline_limit)
    opener = Opener(sealer, redrive)
    held = Quarantine(messages, quarantine, clock=clock, metrics=metrics)
    secrets = ServiceSecrets(key_service)
    return MessageServices(sealer, stored, opener, held,
                           Receiver(opener, stored, held, secrets), secrets)
