"""``make stats``: the dev server's totals, written to the state folder and read back by
a separate process's command."""

from __future__ import annotations

import pytest

from chalicelib.observability import process as telemetry
from tools.local import devserver, stats


def test_make_stats_prints_hit_ratios_and_the_kms_calls_the_caches_saved(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = telemetry.get()  # the process's recorder, as the dev server's app uses
    for _ in range(39):
        metrics.add("KeyCacheHits", Tier="1")
    metrics.add("KeyCacheMisses", Tier="1")
    metrics.add("KeyCacheMisses", Tier="2")
    metrics.add("KmsCalls", Operation="GenerateDataKey", Purpose="DataKey")
    metrics.add("KmsCalls", Operation="Decrypt", Purpose="DataKey")
    for _ in range(3):  # the service secrets and an access key: not the caches' to save
        metrics.add("KmsCalls", Operation="Decrypt", Purpose="Secret")
    metrics.add("KeyServiceCalls")
    metrics.add("KeyServiceLatency", 12.0)
    for _ in range(40):
        metrics.add("Requests", Action="SendMessage")
    devserver.write_stats(started=0.0)
    capsys.readouterr()

    assert stats.run([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "requests: 40, errors: 0" in out
    assert "tier-1 key cache (handler): 39 hits, 1 misses, hit ratio 97.5%" in out
    assert "tier-2 key cache (key service): 0 hits, 1 misses, hit ratio 0.0%" in out
    assert "KMS calls: 5 (GenerateDataKey 1, Decrypt 4), throttled 0" in out
    assert "KMS calls saved by the caches: 38 (messages sealed or opened: 40)" in out
    assert "key-service calls: 1, mean 12.0 ms" in out


def test_make_stats_without_a_running_stack_says_how_to_start_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert stats.run([]) == 1
    assert "make run" in capsys.readouterr().err
