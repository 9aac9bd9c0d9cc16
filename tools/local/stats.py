"""``make stats``: the local stack's counters since it started (``python -m tools.local.stats``).

The dev server (``make run``) writes its process's metric totals to
``.sealq/stats.json`` every few seconds and when it stops; this command, a separate
process, reads that file and prints the key caches' hit ratios and the KMS calls the
caches saved. The numbers are the ones a deployed stack sends to CloudWatch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib.observability import metrics as obs

STATS_FILE = "stats.json"
# The dev server rewrites the file this often while it runs.
WRITE_INTERVAL = 2.0


def state_dir() -> Path:
    """The local stack's state folder (``SEALQ_LOCAL_DIR``, else ``.sealq/``)."""
    default = Path(__file__).resolve().parents[2] / ".sealq"  # the repository's
    return Path(os.environ.get("SEALQ_LOCAL_DIR") or default)


def snapshot(totals: Iterable[obs.Total], started: float, now: float) -> dict[str, Any]:
    return {
        "started_at": started,
        "updated_at": now,
        "metrics": [{"name": t.name, "dimensions": dict(t.dimensions), "value": t.value,
                     "samples": t.samples} for t in totals],
    }


def write(path: Path, totals: Iterable[obs.Total], started: float) -> None:
    """Replace ``path`` atomically with the totals (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(snapshot(totals, started, time.time())))
    partial.replace(path)


def _sum(metrics: Sequence[Mapping[str, Any]], name: str, **dimensions: str) -> float:
    return sum(float(m["value"]) for m in metrics if m["name"] == name
               and all(m["dimensions"].get(k) == v for k, v in dimensions.items()))


def total(metrics: Sequence[Mapping[str, Any]], name: str, **dimensions: str) -> float:
    """A metric's total over every dimension set that includes ``dimensions``."""
    return _sum(metrics, name, **dimensions)


def data_key_requests(metrics: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """(KMS requests made for data keys, KMS requests a per-message scheme would have
    made): without the caches every seal and every open would call KMS once; the calls
    made for the deployment's secrets (Purpose=Secret) are not the caches' to save."""
    needed = (_sum(metrics, obs.KEY_CACHE_HITS, Tier=obs.HANDLER_TIER)
              + _sum(metrics, obs.KEY_CACHE_MISSES, Tier=obs.HANDLER_TIER))
    return _sum(metrics, obs.KMS_CALLS, Purpose=obs.FOR_DATA_KEYS), needed


def _ratio(hits: float, misses: float) -> str:
    lookups = hits + misses
    return f"{100.0 * hits / lookups:.1f}%" if lookups else "n/a"


def summary(data: Mapping[str, Any], now: float) -> list[str]:
    """The lines ``make stats`` prints for one snapshot."""
    metrics = data["metrics"]
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["started_at"]))
    age = now - float(data["updated_at"])
    lines = [f"sealq local stack, since {started} (updated {age:.0f} s ago)"]
    if age > 3 * WRITE_INTERVAL:
        lines.append("  (not updated lately: is `make run` still running?)")
    lines.append(f"requests: {_sum(metrics, obs.REQUESTS):.0f}, "
                 f"errors: {_sum(metrics, obs.ERRORS):.0f}")
    tiers = {obs.HANDLER_TIER: "tier-1 key cache (handler)",
             obs.KEY_SERVICE_TIER: "tier-2 key cache (key service)"}
    for tier, label in tiers.items():
        hits = _sum(metrics, obs.KEY_CACHE_HITS, Tier=tier)
        misses = _sum(metrics, obs.KEY_CACHE_MISSES, Tier=tier)
        lines.append(f"{label}: {hits:.0f} hits, {misses:.0f} misses, "
                     f"hit ratio {_ratio(hits, misses)}")
    generate = _sum(metrics, obs.KMS_CALLS, Operation="GenerateDataKey")
    decrypt = _sum(metrics, obs.KMS_CALLS, Operation="Decrypt")
    lines.append(f"KMS calls: {generate + decrypt:.0f} (GenerateDataKey {generate:.0f}, "
                 f"Decrypt {decrypt:.0f}), throttled {_sum(metrics, obs.KMS_THROTTLED):.0f}")
    made, needed = data_key_requests(metrics)
    saved = max(0.0, needed - made)
    lines.append(f"KMS calls saved by the caches: {saved:.0f} "
                 f"(messages sealed or opened: {needed:.0f})")
    calls = _sum(metrics, obs.KEY_SERVICE_CALLS)
    latency = _sum(metrics, obs.KEY_SERVICE_LATENCY)
    mean = f", mean {latency / calls:.1f} ms" if calls else ""
    lines.append(f"key-service calls: {calls:.0f}{mean}")
    lines.append(f"sealed bytes: {_sum(metrics, obs.SEALED_BYTES):.0f}, "
                 f"quarantined messages: {_sum(metrics, obs.QUARANTINED_MESSAGES):.0f}")
    return lines


def run(argv: Sequence[str] | None = None) -> int:
    path = state_dir() / STATS_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"sealq: no stats at {path}: start the local stack with `make run`",
              file=sys.stderr)
        return 1
    except ValueError:
        print(f"sealq: {path} is not a stats file", file=sys.stderr)
        return 1
    print("\n".join(summary(data, time.time())))
    return 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
