"""All benchmarks, one after the other: ``python -m bench`` from the repo root (``make bench``).

Order: bench_fleet (KMS requests of a fleet: what the two cache tiers save), then
bench_seal (warm per-message cost of sealing: what a cached key still costs). Each
also runs alone: ``python -m bench.bench_fleet``, ``python -m bench.bench_seal``.

Both run here in the same sandbox: dummy credentials, SEALQ_* overrides removed,
settings and clients reset, a fresh in-process moto backend with sealq's resources,
so ``make bench`` can never reach a real account whatever the shell exports.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench import bench_fleet, bench_seal


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="bench_fleet over 10 simulated minutes, not 60"
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    bench_fleet.main(["--quick"] if args.quick else [])
    print(flush=True)
    with bench_fleet.moto_stack():
        bench_seal.run()
    print(f"python -m bench took {time.perf_counter() - began:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
