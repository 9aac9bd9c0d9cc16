"""Metrics, recorded where things happen and sent where the composition root says.

Domain code records events through the small :class:`Metrics` port, by name from the
fixed set below, with bounded dimensions (action names, sealq's error codes, cache
tier, KMS operation): never a key, secret, body or queue name. The composition root
picks the sink: in Lambda a :class:`Recorder` whose samples go out as CloudWatch
embedded-metric-format (EMF) lines through Powertools Metrics once per invocation;
locally the same recorder only keeps totals (``make stats``). Powertools is imported
only when metrics are sent (cold start: nothing here at import).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

NAMESPACE = "sealq"

# Metric names, each with its one unit and the dimensions it is recorded with.
REQUESTS = "Requests"  # Action
ERRORS = "Errors"  # Action, Code
# A request's time in the handler, from its arrival to its answer (p50/p99 per action).
REQUEST_LATENCY = "RequestLatency"  # Action
KEY_CACHE_HITS = "KeyCacheHits"  # Tier: "1" the handler's cache, "2" the key service's
KEY_CACHE_MISSES = "KeyCacheMisses"  # Tier
KEY_SERVICE_CALLS = "KeyServiceCalls"
KEY_SERVICE_LATENCY = "KeyServiceLatency"
KMS_CALLS = "KmsCalls"  # Operation: GenerateDataKey, Decrypt
KMS_THROTTLED = "KmsThrottled"
SEALED_BYTES = "SealedBytes"
QUARANTINED_MESSAGES = "QuarantinedMessages"
# Triggers (the delivery function): messages handed to a tenant's function, left for
# redelivery, deleted by its filters, failed for the last receive before the queue's
# dead-letter queue; and the function's time per batch.
DELIVERED_MESSAGES = "DeliveredMessages"
FAILED_DELIVERIES = "FailedDeliveries"
FILTERED_MESSAGES = "FilteredMessages"
REDRIVEN_MESSAGES = "RedrivenMessages"
FUNCTION_DURATION = "FunctionDuration"
# Message move tasks: messages a task's worker moved, and tasks that ended (by status).
MOVED_MESSAGES = "MovedMessages"
MOVE_TASKS_ENDED = "MoveTasksEnded"  # Status: COMPLETED, CANCELLED, FAILED

UNITS: Mapping[str, str] = {
    REQUESTS: "Count",
    ERRORS: "Count",
    REQUEST_LATENCY: "Milliseconds",
    KEY_CACHE_HITS: "Count",
    KEY_CACHE_MISSES: "Count",
    KEY_SERVICE_CALLS: "Count",
    KEY_SERVICE_LATENCY: "Milliseconds",
    KMS_CALLS: "Count",
    KMS_THROTTLED: "Count",
    SEALED_BYTES: "Bytes",
    QUARANTINED_MESSAGES: "Count",
    DELIVERED_MESSAGES: "Count",
    FAILED_DELIVERIES: "Count",
    FILTERED_MESSAGES: "Count",
    REDRIVEN_MESSAGES: "Count",
    FUNCTION_DURATION: "Milliseconds",
    MOVED_MESSAGES: "Count",
    MOVE_TASKS_ENDED: "Count",
}
# The dimension names each metric is recorded with, sorted; exactly these (CloudWatch
# finds a metric only under its full dimension set, so dashboards and alarms rely on it).
DIMENSIONS: Mapping[str, tuple[str, ...]] = {
    REQUESTS: ("Action",),
    ERRORS: ("Action", "Code"),
    REQUEST_LATENCY: ("Action",),
    KEY_CACHE_HITS: ("Tier",),
    KEY_CACHE_MISSES: ("Tier",),
    KMS_CALLS: ("Operation", "Purpose"),
    MOVE_TASKS_ENDED: ("Status",),
}
HANDLER_TIER = "1"
KEY_SERVICE_TIER = "2"
# The Purpose of a KMS call: a queue's data key, or a deployment secret (service
# secrets, sealed access-key secrets).
FOR_DATA_KEYS = "DataKey"
FOR_SECRETS = "Secret"

_Dimensions = tuple[tuple[str, str], ...]


class Metrics(Protocol):
    """Where domain code records an event: ``add(KMS_CALLS, Operation="Decrypt")``."""

    def add(self, name: str, value: float = 1, **dimensions: str) -> None: ...


class NoMetrics:
    """Records nothing (the default of every component; tests that do not look)."""

    def add(self, name: str, value: float = 1, **dimensions: str) -> None:
        pass


NO_METRICS: Metrics = NoMetrics()


@dataclass(frozen=True)
class Total:
    """A metric's sum and number of samples since the recorder started."""

    name: str
    dimensions: Mapping[str, str]
    value: float
    samples: int


class Recorder:
    """Thread-safe metrics of one process: totals since start, and (when ``publish``)
    the samples since the last :meth:`flush`, which sends them as EMF."""

    def __init__(self, *, publish: bool = False, namespace: str = NAMESPACE) -> None:
        self._publish = publish
        self._namespace = namespace
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, _Dimensions], list[float]] = {}
        self._totals: dict[tuple[str, _Dimensions], tuple[float, int]] = {}

    def add(self, name: str, value: float = 1, **dimensions: str) -> None:
        if name not in UNITS:
            raise ValueError(f"unknown metric {name!r}")
        if tuple(sorted(dimensions)) != DIMENSIONS.get(name, ()):
            raise ValueError(f"metric {name!r} is recorded with {DIMENSIONS.get(name, ())}")
        key = (name, tuple(sorted(dimensions.items())))
        with self._lock:
            total, samples = self._totals.get(key, (0.0, 0))
            self._totals[key] = (total + value, samples + 1)
            if self._publish:
                self._pending.setdefault(key, []).append(float(value))

    def totals(self) -> list[Total]:
        with self._lock:
            items = sorted(self._totals.items())
        return [Total(name, dict(dims), value, n) for (name, dims), (value, n) in items]

    def flush(self) -> None:
        """Print the pending samples as EMF lines (one per dimension set) and forget them."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            emit_emf(pending, self._namespace)


def emit_emf(
    samples: Mapping[tuple[str, _Dimensions], list[float]], namespace: str = NAMESPACE,
) -> None:
    """One EMF blob per dimension set, through Powertools Metrics (printed to stdout).

    EMF applies a blob's dimensions to every metric in it, so metrics are grouped by
    their dimensions; counts go out summed, latencies as their values. No ``service``
    dimension is added, so alarms find e.g. ``KmsThrottled`` under its name alone; a
    deployed stack publishes under a namespace of its own (``sealq/<stack name>``).
    """
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    groups: dict[_Dimensions, dict[str, list[float]]] = {}
    for (name, dims), values in samples.items():
        groups.setdefault(dims, {})[name] = values
    for dims, metrics in sorted(groups.items()):
        blob = AmazonCloudWatchEMFProvider(namespace=namespace, service="")
        for dim_name, dim_value in dims:
            blob.add_dimension(name=dim_name, value=dim_value)
        for name, values in sorted(metrics.items()):
            unit = UNITS[name]
            # Powertools prints a blob by itself when a metric reaches 100 values.
            for value in values if unit == "Milliseconds" else [sum(values)]:
                blob.add_metric(name=name, unit=unit, value=value)
        blob.flush_metrics()
