"""All benchmarks, one after the other: ``python -m bench`` from the repo root (``make bench``).

Order: bench_fleet (KMS requests of a fleet: what the two cache tiers save), then
bench_seal (warm per-message cost of sealing: what a cached key still costs), then
bench_auth (warm SendMessage with and without SigV4 verification), then bench_cost
(what a million messages cost on either API type, beside SQS with SSE-KMS), then
bench_http (the local HTTP path, ``make run`` against its moto directly), then
bench_coldstart (each Lambda function's imports from the unpacked package, beside
``import boto3``). Each also runs alone: ``python -m bench.bench_fleet``,
``python -m bench.bench_seal``, ``python -m bench.bench_auth``,
``python -m bench.bench_cost``, ``python -m bench.bench_http``,
``python -m bench.bench_coldstart``.

The first two run here in the same sandbox: dummy credentials, SEALQ_* overrides
removed, settings and clients reset, a fresh in-process moto backend with sealq's
resources; bench_http gives its own moto and devserver processes a clean environment
with dummy credentials. So ``make bench`` can never reach a real account whatever the
shell exports.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench import bench_auth, bench_coldstart, bench_cost, bench_fleet, bench_http, bench_seal


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="bench_fleet over 10 simulated minutes, not 60; bench_cost, bench_http and"
        " bench_coldstart a few rounds",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    bench_fleet.main(["--quick"] if args.quick else [])
    print(flush=True)
    with bench_fleet.moto_stack():
        bench_seal.run()
    print(flush=True)
    with bench_fleet.moto_stack():
        bench_auth.run(quick=args.quick)
    print(flush=True)
    bench_cost.main(["--quick"] if args.quick else [])
    print(flush=True)
    bench_http.main(["--quick"] if args.quick else [])
    print(flush=True)
    bench_coldstart.main(["--quick"] if args.quick else [])
    print(f"python -m bench took {time.perf_counter() - began:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
