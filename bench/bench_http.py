"""The local HTTP path: one boto3 client against ``make run`` and straight against its moto.

Run from the repo root: ``python -m bench.bench_http`` (``--quick`` for a short look).
It starts a moto server (``moto.server.ThreadedMotoServer``) in a child process and
the real ``python -m tools.local.devserver`` pointed at it with ``SEALQ_AWS_ENDPOINT``, as a
developer would run them, then measures two ways, side by side:

- one client, interleaved: each round sends, receives and deletes one message through
  sealq, then the same on a plain moto queue (the order alternates every round), at
  1 KiB and 64 KiB; p50 and p99 per operation;
- ten clients on threads, each with its own queue, doing send / receive / delete cycles
  of 1 KiB for a fixed time: messages per second, sealq then moto, twice each.

With ``--hop`` the one-client rounds also go through a pass-through hop: a Python
HTTP server like sealq's own (keep-alive, ``TCP_NODELAY``, one write per response)
that forwards each request unchanged to moto. It is the least any Python server in
front of moto adds, the floor under sealq's column.

The bench process holds only the clients; moto, sealq and the hop run in their own
processes, so no server shares an interpreter lock with the clients. Dummy
credentials only: nothing here can reach a real account.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config

from tools.local import credentials as localcreds

REPO_ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
SIZES = (1024, 64 * 1024)
OPERATIONS = ("send", "recv", "del")
START_TIMEOUT = 60.0
DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
# A moto server in a child process: prints its URL, serves until stdin closes.
_MOTO_CHILD = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(f"http://{host}:{port}", flush=True)
sys.stdin.read()
server.stop()
"""

# A pass-through hop in a child process: prints its URL, forwards to moto (argv[1]).
_HOP_CHILD = """
import http.client, socket, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit
target = urlsplit(sys.argv[1])

class Hop(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(target.hostname, target.port)
        upstream.connect()
        upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        upstream.request("POST", self.path, body=body, headers=dict(self.headers))
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        head = [f"HTTP/1.1 {answer.status} {answer.reason}"]
        head += [f"{k}: {v}" for k, v in answer.getheaders()
                 if k.lower() not in ("connection", "content-length", "transfer-encoding")]
        head.append(f"Content-Length: {len(data)}")
        self.wfile.write(("\\r\\n".join(head) + "\\r\\n\\r\\n").encode("latin-1") + data)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Hop)
server.daemon_threads = True
print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""


@dataclass(frozen=True)
class Workload:
    """How much to measure; the defaults are the published run."""

    rounds: int = 150
    warmup: int = 10
    clients: int = 10
    throughput_seconds: float = 5.0
    throughput_phases: int = 2

    @classmethod
    def quick(cls) -> Workload:
        """A few rounds and a short throughput phase: the table's shape, for tests."""
        return cls(rounds=5, warmup=1, clients=10, throughput_seconds=0.5, throughput_phases=1)


@dataclass
class Side:
    """One side's latencies (seconds) per (size, operation) and its throughput."""

    latencies: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    messages: int = 0
    seconds: float = 0.0

    def add(self, size: int, op: str, seconds: float) -> None:
        self.latencies.setdefault((size, op), []).append(seconds)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


@dataclass
class HttpResult:
    sealq: Side = field(default_factory=Side)
    moto: Side = field(default_factory=Side)
    clients: int = 0
    hop: Side | None = None  # the pass-through hop's one-client latencies, when measured


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 150 samples is the second largest)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


# -- processes -------------------------------------------------------------------------


def _child_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SEALQ_")) and k != "PYTHONPATH"
    }
    env.update(DUMMY_ENV)
    env.update(extra)
    return env


def _read_until(stream: IO[str], marker: str, proc: subprocess.Popen[str]) -> str:
    """The first line of ``stream`` containing ``marker``; the rest is drained on a thread."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"{proc.args!r} exited with {proc.wait()} before {marker!r}")
        if marker in line:
            threading.Thread(target=stream.read, daemon=True).start()
            return line
    raise RuntimeError(f"{proc.args!r} printed no {marker!r} within {START_TIMEOUT:.0f}s")


def _wait_for_line(sink: IO[str], marker: str, proc: subprocess.Popen[str]) -> str:
    """The first line containing ``marker`` that ``proc`` wrote to the file ``sink``.

    The devserver's stdout goes straight to a file rather than through a pipe this
    process drains: a draining thread here would take the interpreter lock from the
    clients being timed, once per request (the app logs a line per request).
    """
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = os.pread(sink.fileno(), 1 << 20, 0).decode("utf-8", "replace")
        for line in text.splitlines():
            if marker in line:
                return line
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {marker!r}")
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} printed no {marker!r} within {START_TIMEOUT:.0f}s")


def sealq_session(credentials: tuple[str, str]) -> Any:
    """A boto3 session signing with the devserver's local access key (id, secret)."""
    return boto3.session.Session(aws_access_key_id=credentials[0],
                                 aws_secret_access_key=credentials[1], region_name=REGION)


@contextmanager
def servers(
    log: IO[str] | None = None, output: IO[str] | None = None
) -> Iterator[tuple[str, str, tuple[str, str]]]:
    """(sealq URL, moto URL, the local access key's (id, secret)): a moto child process
    and the devserver pointed at it, its profile kept in a temporary directory.

    The devserver's stderr goes to ``log`` and its stdout (the startup lines, then the
    app's own log: Chalice sends the ``sealq`` logger there) to ``output``, files the
    caller reads and closes; temporary files when not given. The tail of ``log`` is
    shown if the devserver fails to start.
    """
    owned: list[IO[str]] = []
    if log is None:
        log = tempfile.TemporaryFile("w+")
        owned.append(log)
    if output is None:
        output = tempfile.TemporaryFile("w+")
        owned.append(output)
    state = tempfile.TemporaryDirectory(prefix="sealq-local-")
    moto = subprocess.Popen(
        [sys.executable, "-c", _MOTO_CHILD],
        cwd=REPO_ROOT,
        env=_child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    sealq: subprocess.Popen[str] | None = None
    try:
        assert moto.stdout is not None
        moto_url = _read_until(moto.stdout, "http://", moto).strip()
        sealq = subprocess.Popen(
            [sys.executable, "-m", "tools.local.devserver"],
            cwd=REPO_ROOT,
            env=_child_env(SEALQ_AWS_ENDPOINT=moto_url, SEALQ_PORT="0",
                           SEALQ_LOCAL_DIR=state.name),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=log,
            text=True,
        )
        try:
            line = _wait_for_line(output, "listening on ", sealq)
        except RuntimeError:
            log.seek(0)
            print(log.read()[-4000:], file=sys.stderr)
            raise
        sealq_url = line.split("listening on ", 1)[1].split()[0]
        credentials = localcreds.read_profile(Path(state.name) / "credentials")
        if credentials is None:
            raise RuntimeError("the devserver wrote no sealq-local profile")
        yield sealq_url, moto_url, credentials
    finally:
        if sealq is not None and sealq.poll() is None:
            sealq.send_signal(signal.SIGINT)
            try:
                sealq.wait(30)
            except subprocess.TimeoutExpired:
                sealq.kill()
                sealq.wait()
        if moto.stdin is not None:
            moto.stdin.close()
        try:
            moto.wait(10)
        except subprocess.TimeoutExpired:
            moto.kill()
            moto.wait()
        state.cleanup()
        for file in owned:
            file.close()


@contextmanager
def hop(moto_url: str) -> Iterator[str]:
    """The URL of a pass-through hop to ``moto_url``, in a child process, while open."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOP_CHILD, moto_url], cwd=REPO_ROOT, env=_child_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        yield _read_until(child.stdout, "http://", child).strip()
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# -- measuring --------------------------------------------------------------------------


def _clients(session: Any, endpoint: str, count: int) -> list[Any]:
    # Default client settings, as a new user would have them, but no retries: an error
    # must show, not hide inside a slow sample. Created here, on one thread.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return [
        session.client("sqs", endpoint_url=endpoint, region_name=REGION, config=config)
        for _ in range(count)
    ]


def _cycle(sqs: Any, url: str, body: str) -> tuple[float, float, float]:
    """Send one message, receive it, delete it: seconds for each, in ``OPERATIONS`` order."""
    began = time.perf_counter()
    sqs.send_message(QueueUrl=url, MessageBody=body)
    sent = time.perf_counter()
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
    received = time.perf_counter()
    if len(messages) != 1 or messages[0]["Body"] != body:
        raise RuntimeError(f"receive on {url} did not return the message just sent")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
    deleted = time.perf_counter()
    return sent - began, received - sent, deleted - received


def _latencies(work: Workload, sides: dict[str, tuple[Any, str]], result: HttpResult) -> None:
    names = list(sides)
    for size in SIZES:
        body = "x" * size
        for index in range(work.warmup + work.rounds):
            shift = index % len(names)  # each side goes first, second, ... in turn
            order = names[shift:] + names[:shift]
            if index // len(names) % 2:
                order.reverse()
            for name in order:
                sqs, url = sides[name]
                timings = _cycle(sqs, url, body)
                if index >= work.warmup:
                    side = getattr(result, name)
                    assert side is not None
                    for op, seconds in zip(OPERATIONS, timings, strict=True):
                        side.add(size, op, seconds)


def _throughput(clients: Sequence[tuple[Any, str]], seconds: float) -> int:
    """Cycles of 1 KiB completed by all clients together within ``seconds``."""
    body = "t" * 1024
    done = [0] * len(clients)
    failures: list[BaseException] = []
    start = threading.Barrier(len(clients) + 1)
    stop_at = [0.0]

    def work(index: int) -> None:
        sqs, url = clients[index]
        start.wait()
        try:
            while time.perf_counter() < stop_at[0]:
                _cycle(sqs, url, body)
                done[index] += 1
        except BaseException as err:  # noqa: BLE001 - reported by the caller
            failures.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return sum(done)


def measure(work: Workload, with_hop: bool = False) -> HttpResult:
    """Start the servers, measure, stop them; ``with_hop`` adds the pass-through hop to
    the one-client rounds."""
    result = HttpResult(clients=work.clients, hop=Side() if with_hop else None)
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    )
    with servers() as (sealq_url, moto_url, credentials), ExitStack() as hops:
        endpoints = {"sealq": sealq_url, "moto": moto_url}
        sessions = {"sealq": sealq_session(credentials), "moto": session}
        pools: dict[str, list[tuple[Any, str]]] = {}
        for name, endpoint in endpoints.items():
            clients = _clients(sessions[name], endpoint, work.clients)
            pools[name] = [
                (sqs, sqs.create_queue(QueueName=f"bench-http-{name}-{i}")["QueueUrl"])
                for i, sqs in enumerate(clients)
            ]
        one_client = {name: pool[0] for name, pool in pools.items()}
        if with_hop:
            (sqs,) = _clients(session, hops.enter_context(hop(moto_url)), 1)
            one_client["hop"] = (sqs, sqs.create_queue(QueueName="bench-http-hop")["QueueUrl"])
        _latencies(work, one_client, result)
        # Every queue once before timing: sealq's first message on a queue fetches its
        # record and data key, which is not the steady state being measured.
        for pool in pools.values():
            for sqs, url in pool:
                _cycle(sqs, url, "w" * 1024)
        for _ in range(work.throughput_phases):
            for name, pool in pools.items():
                side: Side = getattr(result, name)
                began = time.perf_counter()
                side.messages += _throughput(pool, work.throughput_seconds)
                side.seconds += time.perf_counter() - began
    return result


def _rows(side: Side, moto: Side, name: str) -> list[str]:
    """p50 and p99 of ``side`` beside moto's, per size and operation."""
    lines = [
        f"{'size':>6} {'op':>5} | {name + ' p50':>9} {'moto p50':>9} {'ratio':>6} | "
        f"{name + ' p99':>9} {'moto p99':>9} {'ratio':>6}   (ms)",
    ]
    for size in SIZES:
        for op in OPERATIONS:
            mine = side.latencies.get((size, op), [])
            theirs = moto.latencies.get((size, op), [])
            if not mine or not theirs:
                continue
            cells = []
            for fraction in (0.5, 0.99):
                a, m = percentile(mine, fraction) * 1000, percentile(theirs, fraction) * 1000
                cells.append(f"{a:>9.2f} {m:>9.2f} {a / m:>6.2f}")
            lines.append(f"{size:>6} {op:>5} | {cells[0]} | {cells[1]}")
    return lines


def format_table(result: HttpResult) -> str:
    """The side-by-side table: p50 and p99 per size and operation, then throughput."""
    rounds = len(next(iter(result.sealq.latencies.values()), []))
    lines = [
        f"sealq (make run, external moto) vs the same moto directly; one boto3 client, "
        f"interleaved, {rounds} rounds; python {platform.python_version()}, "
        f"{os.cpu_count()} cpus",
        *_rows(result.sealq, result.moto, "sealq"),
    ]
    ratio = result.sealq.rate / result.moto.rate if result.moto.rate else float("nan")
    lines.append(
        f"{result.clients} clients, 1 KiB send+receive+delete: sealq {result.sealq.rate:.1f} "
        f"msg/s, moto {result.moto.rate:.1f} msg/s, ratio {ratio:.2f}"
    )
    if result.sealq.latencies and result.moto.latencies:
        worst = summary(result)
        lines.append(
            f"worst ratio p50 {worst['worst_p50_ratio']:.2f}, p99 {worst['worst_p99_ratio']:.2f} "
            f"(goal: p50 <= 2.0); throughput {worst['throughput_ratio']:.2f} (goal >= 0.8)"
        )
    if result.hop is not None and result.hop.latencies:
        lines.append("a pass-through hop (forwards each request unchanged), same rounds:")
        lines.extend(_rows(result.hop, result.moto, "hop"))
    return "\n".join(lines)


def summary(result: HttpResult) -> dict[str, float]:
    """The goal's numbers: worst p50 and p99 ratio over all rows, and the throughput ratio."""
    p50 = max(
        statistics.median(result.sealq.latencies[key]) / statistics.median(values)
        for key, values in result.moto.latencies.items()
    )
    p99 = max(
        percentile(result.sealq.latencies[key], 0.99) / percentile(values, 0.99)
        for key, values in result.moto.latencies.items()
    )
    rate = result.sealq.rate / result.moto.rate if result.moto.rate else 0.0
    return {"worst_p50_ratio": p50, "worst_p99_ratio": p99, "throughput_ratio": rate}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few rounds, a short load phase")
    parser.add_argument("--hop", action="store_true",
                        help="also time a pass-through hop to moto (the floor under sealq)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    result = measure(Workload.quick() if args.quick else Workload(), with_hop=args.hop)
    print(format_table(result), flush=True)
    print(f"bench_http took {time.perf_counter() - began:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
