"""The console's live figures: the process's metric totals, sampled once a second.

The counters are the ones ``make stats`` reads (the in-process recorder of
:mod:`chalicelib.observability.process`, in the shape of ``.sealq/stats.json``), with the
same arithmetic (:func:`tools.local.stats.data_key_requests`). A sample keeps only
totals, so rates are differences between two samples; the history since the start
(thinned to a bounded number of points) is what the KMS chart draws.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.clock import Clock
from chalicelib.observability import metrics as obs
from tools.local import stats

# Samples kept: one a second for an hour; older ones are thinned, never lost entirely.
KEPT = 3600
# The chart draws at most this many points.
CHART_POINTS = 240
# Seconds of samples a rate is measured over.
RATE_WINDOW = 5.0


@dataclass(frozen=True)
class Sample:
    """The totals at one moment."""

    at: float
    requests: Mapping[str, float] = field(default_factory=dict)  # by action
    errors: Mapping[str, float] = field(default_factory=dict)  # by action
    hits: tuple[float, float] = (0.0, 0.0)  # tier 1, tier 2
    misses: tuple[float, float] = (0.0, 0.0)
    kms_made: float = 0.0  # for data keys
    kms_per_message: float = 0.0  # what a per-message scheme would have made
    kms_secrets: float = 0.0
    kms_throttled: float = 0.0


def sample(totals: Iterable[obs.Total], at: float) -> Sample:
    """One sample of the recorder's totals."""
    metrics = stats.snapshot(totals, at, at)["metrics"]
    requests: dict[str, float] = {}
    errors: dict[str, float] = {}
    for metric in metrics:
        action = metric["dimensions"].get("Action", "")
        if metric["name"] == obs.REQUESTS:
            requests[action] = requests.get(action, 0.0) + float(metric["value"])
        elif metric["name"] == obs.ERRORS:
            errors[action] = errors.get(action, 0.0) + float(metric["value"])
    tiers = (obs.HANDLER_TIER, obs.KEY_SERVICE_TIER)
    made, needed = stats.data_key_requests(metrics)
    return Sample(
        at=at, requests=requests, errors=errors,
        hits=(stats.total(metrics, obs.KEY_CACHE_HITS, Tier=tiers[0]),
              stats.total(metrics, obs.KEY_CACHE_HITS, Tier=tiers[1])),
        misses=(stats.total(metrics, obs.KEY_CACHE_MISSES, Tier=tiers[0]),
                stats.total(metrics, obs.KEY_CACHE_MISSES, Tier=tiers[1])),
        kms_made=made, kms_per_message=needed,
        kms_secrets=stats.total(metrics, obs.KMS_CALLS, Purpose=obs.FOR_SECRETS),
        kms_throttled=stats.total(metrics, obs.KMS_THROTTLED),
    )


def _ratio(hits: float, misses: float) -> float | None:
    return hits / (hits + misses) if hits + misses else None


def thinned(items: Sequence[Sample], limit: int) -> list[Sample]:
    """At most ``limit`` samples, evenly spread, the first and the last always kept."""
    if len(items) <= limit:
        return list(items)
    step = (len(items) - 1) / (limit - 1)
    return [items[round(n * step)] for n in range(limit)]


class Live:
    """Samples a source of totals on demand or on a thread; answers the console's
    ``/console/api/live``."""

    def __init__(self, totals: Callable[[], Iterable[obs.Total]], clock: Clock,
                 started: float | None = None) -> None:
        self._totals = totals
        self._clock = clock
        self.started = clock.now() if started is None else started
        self._samples: deque[Sample] = deque(maxlen=KEPT)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples.append(Sample(at=self.started))

    def take(self) -> Sample:
        """Sample now (the thread does so every second)."""
        taken = sample(self._totals(), self._clock.now())
        with self._lock:
            if len(self._samples) == KEPT:  # keep the early history, thinner
                kept = thinned(list(self._samples), KEPT // 2)
                self._samples.clear()
                self._samples.extend(kept)
            self._samples.append(taken)
        return taken

    def start(self, interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.take()
                except Exception:  # noqa: BLE001 - a sample lost is no reason to stop
                    continue

        self._thread = threading.Thread(target=loop, name="sealq-console-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def view(self) -> dict[str, Any]:
        """The latest figures, the rates over the last few seconds, the KMS history."""
        latest = self.take()
        with self._lock:
            history = list(self._samples)
        since = latest.at - RATE_WINDOW
        before = next((s for s in reversed(history) if s.at <= since), history[0])
        elapsed = max(latest.at - before.at, 1e-9)
        actions = sorted(set(latest.requests) | set(latest.errors))
        saved = max(0.0, latest.kms_per_message - latest.kms_made)
        return {
            "now": latest.at,
            "started": self.started,
            "rateWindow": round(elapsed, 3),
            "requests": sum(latest.requests.values()),
            "errors": sum(latest.errors.values()),
            "requestsPerSecond": (sum(latest.requests.values())
                                  - sum(before.requests.values())) / elapsed,
            "errorsPerSecond": (sum(latest.errors.values())
                                - sum(before.errors.values())) / elapsed,
            "actions": [{
                "action": action,
                "requests": latest.requests.get(action, 0.0),
                "errors": latest.errors.get(action, 0.0),
                "requestsPerSecond": (latest.requests.get(action, 0.0)
                                      - before.requests.get(action, 0.0)) / elapsed,
                "errorsPerSecond": (latest.errors.get(action, 0.0)
                                    - before.errors.get(action, 0.0)) / elapsed,
            } for action in actions],
            "caches": [{
                "tier": tier, "hits": latest.hits[n], "misses": latest.misses[n],
                "ratio": _ratio(latest.hits[n], latest.misses[n]),
            } for n, tier in enumerate(("1", "2"))],
            "kms": {
                "made": latest.kms_made, "perMessage": latest.kms_per_message,
                "saved": saved, "secrets": latest.kms_secrets,
                "throttled": latest.kms_throttled,
                "savedShare": saved / latest.kms_per_message if latest.kms_per_message else None,
            },
            # [seconds since start, per message, made] for the chart.
            "history": [[round(s.at - self.started, 3), s.kms_per_message, s.kms_made]
                        for s in thinned(history, CHART_POINTS)],
        }
