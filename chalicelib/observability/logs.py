"""Log context and structured logs: a request's ids on every line it causes.

Log lines get the request's ids from :func:`log_context`, so they reach every line
of a request without any logging library below the composition root. Powertools is
imported only by :func:`configure_json_logs` (cold start: nothing here at import).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

# The logger every sealq module logs under (``sealq.<part>``).
LOGGER = "sealq"


_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "sealq_log_context", default=None
)


@contextlib.contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add ``fields`` (ids only) to every log record of this thread until the block ends."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


def current(name: str) -> str | None:
    """A field of the current :func:`log_context` (e.g. the request id to pass on)."""
    return (_context.get() or {}).get(name)


class ContextFilter(logging.Filter):
    """Copies the current :func:`log_context` onto each record it sees (as extra keys)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class _Stdout:
    """Whatever ``sys.stdout`` is at the time of writing (Lambda's, or a test's capture)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


# Loggers whose DEBUG lines carry request or response bodies (botocore logs KMS's
# Plaintext): never below WARNING, whatever sealq's own level is.
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "aws_encryption_sdk")
_configured = threading.Lock()
_powertools: Any = None  # the Powertools Logger that owns the "sealq" logger, once made


def configure_json_logs(level: str) -> None:
    """sealq's loggers (``sealq`` and its children) write Powertools' structured JSON
    lines to stdout at ``level``, with the :func:`log_context` ids; once per process,
    later calls only change the level."""
    from aws_lambda_powertools import Logger

    global _powertools
    sealq = logging.getLogger(LOGGER)
    with _configured:
        if _powertools is None:
            # Chalice's own plain handler on the same logger would print every line twice.
            for handler in list(sealq.handlers):
                sealq.removeHandler(handler)
            _powertools = Logger(service=LOGGER, level=level, stream=_Stdout())  # type: ignore[arg-type]
            _powertools.registered_handler.addFilter(ContextFilter())
            # Records reach the root's handlers too; Powertools filters them out there
            # (Lambda's) and pytest's capture keeps seeing them.
            sealq.propagate = True
        else:
            _powertools.setLevel(level)  # Lambda's log-level control still comes first
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))


def lambda_ids(lambda_context: Any, request_context: Mapping[str, Any] | None = None
               ) -> dict[str, str | None]:
    """The Lambda and API Gateway request ids of an invocation, as log fields."""
    function_id = getattr(lambda_context, "aws_request_id", None)
    gateway_id = (request_context or {}).get("requestId")
    return {
        "function_request_id": function_id if isinstance(function_id, str) else None,
        "apigw_request_id": gateway_id if isinstance(gateway_id, str) else None,
    }


def unconfigure_json_logs() -> None:
    """Undo :func:`configure_json_logs` (tests): sealq's loggers back to plain logging."""
    global _powertools
    sealq = logging.getLogger(LOGGER)
    with _configured:
        _powertools = None
        for handler in list(sealq.handlers):
            sealq.removeHandler(handler)
        for attribute in ("init", "powertools_handler", "powertools_buffer_config",
                          "powertools_buffer_cache"):
            sealq.__dict__.pop(attribute, None)
        sealq.setLevel(logging.NOTSET)
