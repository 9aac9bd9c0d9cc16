"""The fleet bench's quick variant, checked for the shape its table claims.

The numbers are the bench's to print; what must hold on any seed is the design's
promise (invariant 5): sealq's data-key count is bounded by queues x ceil(B/D) and
its KMS total sits below one tier, which sits below one request per message.
"""

from __future__ import annotations

import math

from bench import bench_auth, bench_cost, bench_http
from bench.bench_fleet import Workload, format_table, measure, schedule


def test_the_schedule_is_seeded_and_every_message_is_received_once() -> None:
    work = Workload.quick()
    ticks = schedule(work)
    assert ticks == schedule(work)
    assert len(ticks) == work.ticks
    sent = [s.body for t in ticks for s in t.sends]
    received = [b for t in ticks for r in t.receives for b in r.bodies]
    assert len(sent) == work.producers * work.ticks
    assert sorted(received) == sorted(sent)
    assert all(len(r.bodies) <= 10 for t in ticks for r in t.receives)
    handlers = {s.handler for t in ticks for s in t.sends}
    assert handlers == set(range(work.handlers))


def test_quick_fleet_bench_sealq_below_one_tier_below_per_message(stack: None) -> None:
    work = Workload.quick()
    result = measure(work)

    assert result.sent == result.received == work.producers * work.ticks
    a, b, c = result.per_message, result.one_tier, result.sealq
    assert (a.generate, a.decrypt) == (result.sent, result.received)
    bound = work.queues * math.ceil(work.duration / work.reuse_period)
    assert 0 < c.generate <= bound
    # The receipt-handle secret: one GenerateDataKey for the deployment, on top.
    assert result.sealq_secret.generate == 1
    assert c.generate + result.sealq_secret.generate <= bound + 1
    assert c.total < b.total < a.total
    assert result.documented == round(
        work.duration / work.reuse_period * (2 * work.producers + work.consumers) * work.queues
    )

    table = format_table(result)
    for row in ("GenerateDataKey", "Decrypt", "Total KMS requests", "(a)/(c)", "(b)/(c)"):
        assert row in table


def test_quick_http_bench_measures_every_operation_on_every_side() -> None:
    work = bench_http.Workload.quick()
    result = bench_http.measure(work, with_hop=True)

    assert result.hop is not None
    for side in (result.sealq, result.moto, result.hop):
        assert set(side.latencies) == {
            (size, op) for size in bench_http.SIZES for op in bench_http.OPERATIONS
        }
        assert all(len(samples) == work.rounds for samples in side.latencies.values())
    for side in (result.sealq, result.moto):
        assert side.messages > 0 and side.rate > 0
    table = bench_http.format_table(result)
    assert "hop p50" in table
    for size in bench_http.SIZES:
        for op in bench_http.OPERATIONS:
            assert any(line.split()[:2] == [str(size), op] for line in table.splitlines())
    assert f"{work.clients} clients" in table
    assert set(bench_http.summary(result)) == {
        "worst_p50_ratio",
        "worst_p99_ratio",
        "throughput_ratio",
    }


def test_percentile_is_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 151)]
    assert bench_http.percentile(samples, 0.5) == 75.0
    assert bench_http.percentile(samples, 0.99) == 149.0
    assert bench_http.percentile([3.0], 0.99) == 3.0


def test_the_auth_bench_times_both_sides_of_the_same_warm_send() -> None:
    result = bench_auth.measure(bench_auth.memory_handler(), rounds=5)
    assert result.verified_us > 0 and result.unverified_us > 0


def test_the_cost_bench_prices_both_api_types_at_both_batch_sizes_beside_sqs(
    stack: None,
) -> None:
    result = bench_cost.run(quick=True)

    for batch in bench_cost.BATCHES:
        found = result.measured[batch]
        steady = found.steady
        # send + receive + delete: three requests per batch, and one backing call each
        assert steady.api_requests == steady.backing_sqs == found.sqs_requests == 3 / batch
        assert steady.handler_cpu_ms > 0
        # the warm path: no key service, no KMS, no DynamoDB per message (invariant 5)
        assert steady.key_service_invocations == steady.kms == steady.ddb_reads == 0
        assert steady.s3_puts == steady.s3_gets == 0  # 1 KiB stays inline
        # a new reuse period: one GenerateDataKey, at most one Decrypt elsewhere
        assert 1 <= found.key_refresh.kms <= 2
        assert found.queue_refresh.ddb_reads >= 1 and found.auth_refresh.ddb_reads >= 1
        rest = result.bills[("sealq REST", batch)]
        http = result.bills[("sealq HTTP", batch)]
        sqs = result.bills[("SQS + SSE-KMS", batch)]
        assert rest.total > http.total > sqs.total > 0
        # the API type changes the API Gateway line ($3.50 against $1.00 a million) and,
        # by its event's own entry CPU, at most the handler's billed duration
        gateway = rest.lines["API Gateway"] - http.lines["API Gateway"]
        assert round(gateway, 6) == round(3 / batch * 2.50, 6)
        assert {k for k in rest.lines if rest.lines[k] != http.lines[k]} <= {
            "API Gateway", "Lambda duration (handler)"}
        assert rest.lines["SQS requests"] == sqs.lines["SQS requests"]
    assert result.idle["sealq REST"] > result.idle["SQS + SSE-KMS"]

    table = bench_cost.format_table(result)
    for column in ("REST b1", "HTTP b1", "SQS b1", "REST b10", "HTTP b10", "SQS b10"):
        assert column in table
    assert bench_cost.PRICES_DATE in table and "assumed, not measured" in table
    for _, _, page in bench_cost.PRICES.values():
        assert page in table
