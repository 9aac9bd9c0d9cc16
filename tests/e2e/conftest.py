"""End-to-end harness: the real command in a subprocess, unmodified boto3 and AWS CLI.

The session starts ``python -m tools.local.devserver`` exactly as a developer
would (embedded moto, a free port), waits for its ``listening on`` line, and at
the end stops it with SIGINT and requires a clean exit. Set SEALQ_E2E_ENDPOINT
to run the same tests against a server that is already running instead (a
deployed stack, or plain moto to check the tests themselves).

Every test is marked ``e2e``: ``pytest -m "not e2e"`` skips the lot.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# For the AWS endpoint behind sealq (moto accepts any); sealq itself needs its own key.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Read once at collection: the per-test fixtures of tests/conftest.py clear SEALQ_*.
EXTERNAL_ENDPOINT = os.environ.get("SEALQ_E2E_ENDPOINT", "").strip().rstrip("/")
# For SEALQ_E2E_ENDPOINT: the credentials file holding profile sealq-local (by default the
# one ``make run`` writes under the project).
EXTERNAL_CREDENTIALS = Path(
    os.environ.get("SEALQ_E2E_CREDENTIALS_FILE") or REPO_ROOT / ".sealq" / "credentials")

CliRunner = Callable[..., tuple[int, str, str]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end through the real local server and real clients"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any AWS or sealq setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEALQ_"))}
    env.update(extra)
    return env


class _Output:
    """Drains the server's stdout on a thread (a full pipe would block it) and finds the URLs."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.url: str | None = None
        self.aws_endpoint: str | None = None
        self.console_url: str | None = None
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)
            if self.url is None and "listening on " in line:
                self.url = line.split("listening on ", 1)[1].split()[0]
                backend = re.search(r"\(AWS: (http\S+?);", line)
                self.aws_endpoint = backend.group(1) if backend else None
                self.listening.set()
            elif self.console_url is None and "sealq console: " in line:
                self.console_url = line.split("sealq console: ", 1)[1].split()[0]
        self.listening.set()  # EOF: the process died before listening

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
    except OSError:
        return ""


@dataclass(frozen=True)
class Server:
    url: str
    # The AWS endpoint behind it (the embedded moto), when known: lets tests look at
    # what was stored. None for SEALQ_E2E_ENDPOINT or real AWS.
    aws_endpoint: str | None
    # The AWS credentials file with profile sealq-local, as the devserver wrote it.
    credentials_file: Path
    # Where the trigger targets of tests/e2e/consumers.py write what they get (None for
    # SEALQ_E2E_ENDPOINT: its server is not ours to configure).
    trigger_log: Path | None = None

    @property
    def credentials(self) -> dict[str, str]:
        """The sealq-local key as ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``."""
        from tools.local.credentials import read_profile

        found = read_profile(self.credentials_file)
        if found is None:
            pytest.fail(f"no profile sealq-local in {self.credentials_file}")
        return {"AWS_ACCESS_KEY_ID": found[0], "AWS_SECRET_ACCESS_KEY": found[1]}

    def session(self) -> boto3.session.Session:
        """A boto3 session signing with the sealq-local profile, as a developer's would."""
        return boto3.session.Session(
            profile_name=PROFILE, region_name=REGION,
            botocore_session=_botocore_session(self.credentials_file),
        )


PROFILE = "sealq-local"


def _botocore_session(credentials_file: Path) -> Any:
    import botocore.session

    session = botocore.session.Session()
    session.set_config_variable("credentials_file", str(credentials_file))
    session.set_config_variable("config_file", str(credentials_file.with_name("no-config")))
    return session


@contextmanager
def running_devserver(state_dir: Path, **env: str) -> Iterator[_Output]:
    """``make run``'s command on a free port with its state in ``state_dir``, until it has
    said where it listens; then stopped with SIGINT, and it must exit 0 without a
    traceback. ``env`` is added to a clean environment."""
    port = _free_port()
    stderr_path = state_dir / "stderr.log"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.local.devserver"],
            cwd=REPO_ROOT,
            env=_clean_env(SEALQ_PORT=str(port), SEALQ_LOCAL_DIR=str(state_dir), **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    output = _Output(proc.stdout)
    try:
        if not output.listening.wait(START_TIMEOUT) or output.url is None:
            pytest.fail(
                f"devserver did not report 'listening on' within {START_TIMEOUT:.0f}s "
                f"(exit code {proc.poll()})\nstdout:\n{''.join(output.lines)}"
                f"\nstderr:\n{_tail(stderr_path)}"
            )
        assert output.url == f"http://127.0.0.1:{port}", output.url
        # The console's line follows the listening one.
        deadline = time.monotonic() + 5
        while output.console_url is None and time.monotonic() < deadline:
            time.sleep(0.02)
        yield output
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                pytest.fail(f"devserver ignored SIGINT for {STOP_TIMEOUT:.0f}s")
        output.join(5)
    errors = _tail(stderr_path, 200)
    assert proc.returncode == 0, f"devserver exited {proc.returncode}\n{errors}"
    assert "Traceback" not in errors, errors


@pytest.fixture(scope="session")
def sealq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A running sealq: the real command as a subprocess, stopped with SIGINT at the end."""
    if EXTERNAL_ENDPOINT:
        yield Server(EXTERNAL_ENDPOINT, None, EXTERNAL_CREDENTIALS)
        return
    state_dir = tmp_path_factory.mktemp("sealq-local")
    trigger_log = tmp_path_factory.mktemp("triggers") / "events.jsonl"
    with running_devserver(state_dir, SEALQ_E2E_TRIGGER_LOG=str(trigger_log)) as output:
        assert output.url is not None
        yield Server(output.url, output.aws_endpoint, state_dir / "credentials", trigger_log)


@pytest.fixture(scope="session")
def sealq_endpoint(sealq_server: Server) -> str:
    """The URL clients use: ``--endpoint-url`` / ``endpoint_url``."""
    return sealq_server.url


@pytest.fixture(scope="session")
def backend_s3(sealq_server: Server) -> Any:
    """An S3 client on the stack's own AWS endpoint; skips when that is not known."""
    if sealq_server.aws_endpoint is None:
        pytest.skip("the server's AWS endpoint is unknown")
    return boto3.session.Session(
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=REGION,
    ).client("s3", endpoint_url=sealq_server.aws_endpoint)


@pytest.fixture(scope="session")
def sqs(sealq_server: Server, sealq_endpoint: str) -> Any:
    """An unmodified boto3 SQS client on profile sealq-local; no retries, so every error
    the server sends is seen."""
    return sealq_server.session().client(
        "sqs",
        endpoint_url=sealq_endpoint,
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def _aws_executable() -> str:
    beside = Path(sys.executable).parent / "aws"
    if beside.exists():
        return str(beside)
    found = shutil.which("aws")
    if found is None:
        pytest.fail("the aws CLI is not installed (pip install awscli)")
    return found


@pytest.fixture(scope="session")
def aws_cli(
    sealq_server: Server, sealq_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> CliRunner:
    """``aws_cli("sqs", "create-queue", ...) -> (rc, stdout, stderr)`` against the server.

    No profile, config or credentials file of the developer is read: the CLI uses
    profile sealq-local from the credentials file the devserver wrote, as its
    startup line tells a developer to.
    """
    executable = _aws_executable()
    home = tmp_path_factory.mktemp("aws-cli")
    empty = home / "empty"
    empty.write_text("")
    env = _clean_env(
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(sealq_server.credentials_file),
        AWS_PROFILE=PROFILE,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
    )

    def run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
        done = subprocess.run(
            [
                executable,
                *args,
                "--endpoint-url",
                sealq_endpoint,
                "--region",
                REGION,
                "--output",
                "json",
            ],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.returncode, done.stdout, done.stderr

    return run


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique queue names per test: ``queue_name("orders") -> "e2e-orders-3f9a1c0b2d"``."""

    def make(stem: str = "q") -> str:
        name = f"e2e-{stem}-{uuid.uuid4().hex[:10]}"
        assert len(name) <= 80
        return name

    return make
