"""Configuration from environment variables, read in this one place.

Nothing else in sealq calls ``os.environ``. Settings are read lazily (never at
import time) and cached; tests call :func:`reset` after changing the environment.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_ACCOUNT = "000000000000"
# SQS queue names are at most 80 of [A-Za-z0-9_-]: the prefix leaves room for 32 hex
# digits and ".fifo".
_BACKING_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,43}")


class SettingsError(ValueError):
    """A configuration value is missing or out of range; raised at first use."""


@dataclass(frozen=True)
class Settings:
    region: str
    # None: the boto3 default endpoints (real AWS); else one URL for every service.
    aws_endpoint: str | None
    queues_table: str
    keys_table: str
    # Accounts and access keys (the sealed secrets): the handler only reads it.
    accounts_table: str
    payload_bucket: str
    default_kms_key: str
    # Name or ARN of the key-service Lambda; empty means call it in-process.
    key_service_function: str
    # Base URL for queue URLs; empty means derived from the request's Host header.
    public_url: str
    default_account: str
    # Handler tier-1 cache of data keys: bound on entries.
    handler_cache_size: int
    # Key-service tier-2 cache of data keys: bound on entries.
    key_service_cache_size: int
    # Seconds a decrypt-side key stays in either tier after it was fetched.
    decrypt_key_ttl: float
    # Seconds a queue's registry record is cached in a handler (invariant 7).
    queue_cache_ttl: float
    # Sealed messages above this many bytes (base64) are stored in S3.
    inline_limit: int
    # Bytes of JSON a ReceiveMessage response may carry (Lambda's limit is 6 MB).
    receive_response_limit: int
    log_level: str
    # Seconds a handler trusts a cached access-key record: a deactivated or deleted key
    # stops working within this (chalicelib.auth.keys).
    auth_cache_ttl: float = 30.0
    # Set by the Lambda runtime; empty when running anywhere else.
    lambda_function_name: str = ""
    # ARN of the delivery Lambda (triggers' event source mappings invoke it); empty: the
    # local stack delivers in-process.
    delivery_function: str = ""
    # Backing SQS queues are named <prefix><32 hex>[.fifo]: the stack's own prefix, so
    # two stacks in one account and region never share (or may touch) each other's queues.
    backing_queue_prefix: str = "sealq-"
    # "json": Powertools' structured lines on stdout (Lambda's default); "text": plain
    # logging as the process configured it (local runs).
    log_format: str = "text"
    # "emf": CloudWatch embedded-metric lines once per invocation (Lambda's default);
    # "off": counters kept in memory only (local runs read them with ``make stats``).
    metrics: str = "off"
    # CloudWatch namespace of the EMF metrics: Powertools' own variable; a deployed stack
    # sets sealq/<stack name>, so two stacks' metrics and alarms never mix.
    metrics_namespace: str = "sealq"


def _number[N: (int, float)](
    env: Mapping[str, str], name: str, default: N, low: N, high: N, parse: Callable[[str], N]
) -> N:
    """``name`` parsed with ``parse`` (int or float) within [low, high]; default when unset."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        kind = "an integer" if parse is int else "a number"
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return _number(env, name, default, low, high, int)


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    return _number(env, name, default, low, high, float)


def from_environ(env: Mapping[str, str]) -> Settings:
    """Build settings from a mapping; fails fast on values out of range."""
    endpoint = env.get("SEALQ_AWS_ENDPOINT", "").strip()
    account = env.get("SEALQ_ACCOUNT", DEFAULT_ACCOUNT)
    if not (len(account) == 12 and account.isdigit()):
        raise SettingsError(f"SEALQ_ACCOUNT must be 12 digits, got {account!r}")
    prefix = env.get("SEALQ_BACKING_QUEUE_PREFIX") or "sealq-"
    if not _BACKING_PREFIX.fullmatch(prefix):
        raise SettingsError(
            f"SEALQ_BACKING_QUEUE_PREFIX must be 1-43 of [A-Za-z0-9_-], got {prefix!r}")
    return Settings(
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_endpoint=None if endpoint in ("", "aws") else endpoint,
        queues_table=env.get("SEALQ_QUEUES_TABLE", "sealq-queues"),
        keys_table=env.get("SEALQ_KEYS_TABLE", "sealq-keys"),
        accounts_table=env.get("SEALQ_ACCOUNTS_TABLE", "sealq-accounts"),
        payload_bucket=env.get("SEALQ_PAYLOAD_BUCKET", "sealq-payloads"),
        default_kms_key=env.get("SEALQ_DEFAULT_KMS_KEY", "alias/sealq-default"),
        key_service_function=env.get("SEALQ_KEY_SERVICE_FUNCTION", ""),
        public_url=env.get("SEALQ_PUBLIC_URL", "").rstrip("/"),
        default_account=account,
        handler_cache_size=_int(env, "SEALQ_HANDLER_CACHE_SIZE", 1024, 1, 1_000_000),
        key_service_cache_size=_int(env, "SEALQ_KEY_SERVICE_CACHE_SIZE", 4096, 1, 1_000_000),
        decrypt_key_ttl=_float(env, "SEALQ_DECRYPT_KEY_TTL", 3600.0, 0.0, 86400.0),
        queue_cache_ttl=_float(env, "SEALQ_QUEUE_CACHE_TTL", 5.0, 0.0, 300.0),
        inline_limit=_int(env, "SEALQ_INLINE_LIMIT", 256 * 1024, 1024, 1024 * 1024),
        receive_response_limit=_int(
            env, "SEALQ_RECEIVE_RESPONSE_LIMIT", 5_500_000, 100_000, 6_000_000
        ),
        log_level=_log_level(env),
        auth_cache_ttl=_float(env, "SEALQ_AUTH_CACHE_TTL", 30.0, 0.0, 300.0),
        lambda_function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", ""),
        delivery_function=env.get("SEALQ_DELIVERY_FUNCTION", ""),
        backing_queue_prefix=prefix,
        log_format=_choice(env, "SEALQ_LOG_FORMAT", ("json", "text"),
                           "json" if env.get("AWS_LAMBDA_FUNCTION_NAME") else "text"),
        metrics=_choice(env, "SEALQ_METRICS", ("emf", "off"),
                        "emf" if env.get("AWS_LAMBDA_FUNCTION_NAME") else "off"),
        metrics_namespace=_metrics_namespace(env),
    )


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str]) -> str:
    """SEALQ_LOG_LEVEL, else Powertools' POWERTOOLS_LOG_LEVEL, else INFO."""
    raw = env.get("SEALQ_LOG_LEVEL") or env.get("POWERTOOLS_LOG_LEVEL") or "INFO"
    if raw.upper() not in _LOG_LEVELS:
        raise SettingsError(f"SEALQ_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {raw!r}")
    return raw.upper()


# CloudWatch's rule for a namespace (and AWS/ is AWS's own).
_NAMESPACE = re.compile(r"(?!AWS/)[0-9A-Za-z.\-_/#: ]{1,255}")


def _metrics_namespace(env: Mapping[str, str]) -> str:
    value = env.get("POWERTOOLS_METRICS_NAMESPACE") or "sealq"
    if not _NAMESPACE.fullmatch(value):
        raise SettingsError(
            f"POWERTOOLS_METRICS_NAMESPACE must be a CloudWatch namespace, got {value!r}")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or default).strip().lower()
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


_lock = threading.Lock()
_current: Settings | None = None


def get() -> Settings:
    """The process's settings, read from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = from_environ(os.environ)
        return _current


def reset() -> None:
    """Forget the cached settings (tests, or after the environment changed)."""
    global _current
    with _lock:
        _current = None
