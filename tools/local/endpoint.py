"""Where the running local stack is: ``<state dir>/endpoint.json`` (``.sealq/``).

``make run`` writes it once it serves and removes it when it stops; ``make admin`` (a
separate process, started with no variables set) reads it to reach the same AWS
endpoint (the embedded moto's random port), region and names. A file left behind by a
server that did not stop cleanly (killed) is told apart: its process is gone, or its
port no longer answers.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENDPOINT_FILE = "endpoint.json"
# The embedded moto accepts any credentials; these keep botocore from looking for real
# ones (the dev server and the admin command use the same pair).
MOTO_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class StaleEndpoint(Exception):
    """The endpoint file does not describe a running local stack; the message says why
    and what to do, in one line."""


@dataclass(frozen=True)
class LocalEndpoint:
    """A running local stack, as its dev server described itself."""

    url: str  # the sealq server (the SQS endpoint clients use)
    backend: str  # "embedded moto", "endpoint" or "aws" (tools.local.devserver.Backend)
    aws_endpoint: str | None  # the AWS endpoint behind it; None for real AWS
    region: str
    # The SEALQ_* settings the stack runs with (tables, bucket, default key, ...).
    settings: dict[str, str] = field(default_factory=dict)
    # True when the stack signs with MOTO_CREDENTIALS (an emulator, not real AWS).
    dummy_credentials: bool = False
    pid: int = 0

    def environment(self) -> dict[str, str]:
        """The variables a client of this stack's stores needs (settings and region)."""
        env = dict(self.settings)
        env["SEALQ_AWS_ENDPOINT"] = self.aws_endpoint or "aws"
        env.update({"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region})
        return env


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The local stack's state folder: ``SEALQ_LOCAL_DIR``, else ``.sealq/`` of the project."""
    env = os.environ if environ is None else environ
    default = Path(__file__).resolve().parent.parent.parent / ".sealq"
    return Path(env.get("SEALQ_LOCAL_DIR") or default)


def write(path: Path, endpoint: LocalEndpoint) -> None:
    """Replace ``path`` atomically (a reader never sees half a file); owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(asdict(endpoint), out)
    partial.replace(path)


def remove(path: Path, pid: int) -> None:
    """Remove ``path`` if the process ``pid`` wrote it (a newer server's file stays)."""
    try:
        if json.loads(path.read_text()).get("pid") != pid:
            return
        path.unlink()
    except (OSError, ValueError, AttributeError):
        return


def read(path: Path) -> LocalEndpoint | None:
    """The running stack ``path`` describes; None when there is no file.

    Raises :class:`StaleEndpoint` when the file is unreadable or its server is gone.
    """
    try:
        raw: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise StaleEndpoint(f"{path} is not a local stack's endpoint file ({err}): "
                            "remove it, or start the local stack with `make run`") from None
    try:
        endpoint = LocalEndpoint(
            url=str(raw["url"]), backend=str(raw["backend"]),
            aws_endpoint=None if raw.get("aws_endpoint") is None else str(raw["aws_endpoint"]),
            region=str(raw["region"]),
            settings={str(k): str(v) for k, v in dict(raw.get("settings") or {}).items()},
            dummy_credentials=bool(raw.get("dummy_credentials")), pid=int(raw.get("pid") or 0),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StaleEndpoint(f"{path} is not a local stack's endpoint file: remove it, or "
                            "start the local stack with `make run`") from None
    if not (_process_alive(endpoint.pid) and _answers(endpoint.url)):
        raise StaleEndpoint(
            f"the local stack at {endpoint.url} is not running (stale {path}, written by "
            f"process {endpoint.pid}): start it with `make run`, or pass STACK=<stack name> "
            "for a deployed stack")
    return endpoint


def _process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _answers(url: str, timeout: float = 1.0) -> bool:
    """True when something accepts a TCP connection on ``url``'s host and port."""
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
