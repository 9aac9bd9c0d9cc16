"""Cold start: each function's imports, from the unpacked package, beside ``import boto3``.

Run from the repo root: ``python -m bench.bench_coldstart [--zip build/deployment.zip]``.
Without ``--zip`` it uses ``build/deployment.zip`` when that is newer than the code, else
packages the dev stage into a temporary folder first (``tools.package``, no lint).

Each measurement is a fresh interpreter started as Lambda's runtime starts one: the
unpacked zip first on ``sys.path``, no site-packages (``-S``), no bytecode written
(``-B``: ``/var/task`` is read-only). It times, inside that interpreter, the imports
a function makes before it can answer its first event: ``app`` (Lambda's handler
module, which both functions load) and then its own tree (the handler's composition
root, or the key service's). The baseline is ``import boto3`` alone, in the same
conditions. Each figure is the median of several runs; the goal is handler at most
2x and key service at most 1.5x the baseline. The same is shown for the zip without
its ``.pyc`` files, which is what every cold start would pay without them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILT_ZIP = ROOT / "build" / "deployment.zip"
REPEATS = 7
GOALS = {"handler": 2.0, "key service": 1.5, "delivery": 2.0}

# name -> statements, timed together after the interpreter has started.
ENTRY_POINTS: dict[str, str] = {
    "import boto3": "import boto3",
    "handler": "import app; app.app; from chalicelib.handler import container",
    "key service": "import app; app.key_service; from chalicelib.keyservice import process",
    "delivery": "import app; app.delivery; from chalicelib.delivery import process",
}
_PROBE = """
import sys, time, json
sys.path.insert(0, {task!r})
began = time.perf_counter()
exec({statements!r})
elapsed = time.perf_counter() - began
print(json.dumps({{"seconds": elapsed, "modules": sorted(sys.modules)}}))
"""


@dataclass(frozen=True)
class Timing:
    seconds: float  # median
    modules: frozenset[str]  # what the entry point imported (from the last run)


def _newest_source() -> float:
    paths = [ROOT / "app.py", *ROOT.joinpath("chalicelib").rglob("*.py"),
             ROOT / "requirements.txt", ROOT / ".chalice" / "config.json"]
    return max(p.stat().st_mtime for p in paths)


def package_zip(into: Path) -> Path:
    """A current deployment zip: the built one if fresh, else one packaged now."""
    if BUILT_ZIP.exists() and BUILT_ZIP.stat().st_mtime >= _newest_source():
        return BUILT_ZIP
    from tools import package

    package.package("dev", into / "package", run_lint=False)
    return into / "package" / "deployment.zip"


def unpack(zip_path: Path, into: Path, *, bytecode: bool) -> Path:
    """The zip as Lambda's /var/task sees it (optionally without its .pyc files)."""
    into.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zipped:
        for name in zipped.namelist():
            if bytecode or not name.endswith(".pyc"):
                zipped.extract(name, into)
    return into


def time_once(task: Path, statements: str) -> tuple[float, list[str]]:
    """One fresh interpreter: seconds spent in ``statements`` and the modules loaded."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1",
           "AWS_DEFAULT_REGION": "us-east-1", "LANG": "C.UTF-8"}
    code = _PROBE.format(task=str(task), statements=statements)
    done = subprocess.run([sys.executable, "-S", "-B", "-c", code], cwd=task, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{statements!r} failed in {task}:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), list(result["modules"])


def measure(task: Path, repeats: int = REPEATS) -> dict[str, Timing]:
    """Median import time of every entry point, runs interleaved so drift hits all alike."""
    runs: dict[str, list[float]] = {name: [] for name in ENTRY_POINTS}
    modules: dict[str, list[str]] = {}
    for _ in range(repeats):
        for name, statements in ENTRY_POINTS.items():
            seconds, modules[name] = time_once(task, statements)
            runs[name].append(seconds)
    return {name: Timing(statistics.median(values), frozenset(modules[name]))
            for name, values in runs.items()}


def format_table(with_pyc: dict[str, Timing], without_pyc: dict[str, Timing] | None) -> str:
    base = with_pyc["import boto3"].seconds
    lines = [f"{'cold start (imports)':<22}{'with .pyc':>11}{'ratio':>8}{'goal':>7}"
             + (f"{'no .pyc':>11}" if without_pyc else "")]
    for name, timing in with_pyc.items():
        goal = GOALS.get(name)
        ratio = timing.seconds / base
        row = (f"{name:<22}{timing.seconds * 1000:>9.0f}ms{ratio:>7.2f}x"
               f"{(f'{goal:.1f}x' if goal else '-'):>7}")
        if without_pyc:
            row += f"{without_pyc[name].seconds * 1000:>9.0f}ms"
        if goal and ratio > goal:
            row += "   above goal"
        lines.append(row)
    handler, service = with_pyc["handler"].modules, with_pyc["key service"].modules
    lines.append(f"key service loads the encryption SDK: {'aws_encryption_sdk' in service}; "
                 f"modules: key service {len(service)}, handler {len(handler)}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_coldstart", description=__doc__)
    parser.add_argument("--zip", type=Path, help="a deployment zip (default: build/ or new)")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--quick", action="store_true", help="3 runs each, .pyc only")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = args.zip or package_zip(Path(tmp))
        with_pyc = measure(unpack(zip_path, Path(tmp) / "task", bytecode=True), repeats)
        without = None if args.quick else measure(
            unpack(zip_path, Path(tmp) / "task-nopyc", bytecode=False), max(3, repeats // 2))
    print(f"cold start of {zip_path.name}, python {sys.version.split()[0]}, "
          f"median of {repeats} fresh interpreters")
    print(format_table(with_pyc, without), flush=True)


if __name__ == "__main__":
    main()
