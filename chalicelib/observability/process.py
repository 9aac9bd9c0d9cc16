"""This process's metrics recorder (and log format), from the settings on first use.

Both functions use it: the handler through :mod:`chalicelib.handler.container`, the key
service through :mod:`chalicelib.keyservice.process`. It imports nothing of either.
"""

from __future__ import annotations

import logging
import threading

from chalicelib import settings as settings_module
from chalicelib.observability.metrics import Recorder

log = logging.getLogger("sealq.telemetry")

_lock = threading.Lock()
_recorder: Recorder | None = None


def get() -> Recorder:
    """EMF lines flushed once per invocation in Lambda, totals only elsewhere
    (``make stats``); JSON logs switched on here when the settings ask for them."""
    global _recorder
    with _lock:
        if _recorder is None:
            conf = settings_module.get()
            if conf.log_format == "json":
                from chalicelib.observability.logs import configure_json_logs

                configure_json_logs(conf.log_level)
            _recorder = Recorder(publish=conf.metrics == "emf", namespace=conf.metrics_namespace)
        return _recorder


def flush() -> None:
    """Send this invocation's metrics; a failure to do so never fails the request."""
    try:
        get().flush()
    except Exception as err:  # noqa: BLE001
        log.warning("metrics not sent: %s", type(err).__name__)


def reset() -> None:
    """Forget the counters (tests)."""
    global _recorder
    with _lock:
        _recorder = None
