"""The one-command local stack: ``python -m tools.local.devserver``.

Serves the real Chalice app through Chalice's local gateway (the Lambda proxy
event of ``chalice local``, one thread per connection) behind sealq's own HTTP
handler (``tools.local.httpserver``: API Gateway's body limit, timeouts, SQS-shaped
errors, no delayed-ACK stall), against an AWS endpoint chosen by
``SEALQ_AWS_ENDPOINT``:

- unset or empty: an embedded moto server on a free port of 127.0.0.1;
- a URL: that endpoint (an external moto, LocalStack, ...);
- ``aws``: real AWS through the normal boto3 credential chain.

Whatever is missing (tables, bucket, default CMK) is created first. The key
service runs in-process (``SEALQ_KEY_SERVICE_FUNCTION`` stays empty), exactly as
in the functional tests. The listen address comes from ``SEALQ_HOST`` /
``SEALQ_PORT`` (default 127.0.0.1:9324), or ``--host`` / ``--port``; port 0
picks a free port, and the line ``... listening on http://HOST:PORT`` on stdout
always names the bound one. SIGINT and SIGTERM stop everything and exit 0.

This module is a process entry point: unlike library code it writes
``os.environ``, because settings, boto3 and any SDK the app uses read it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import settings
from chalicelib.handler import container
from chalicelib.keyservice.api import KeyServiceError
from chalicelib.observability import process as telemetry
from chalicelib.storage.errors import StorageError
from tools.admin import cli as admin
from tools.local import credentials as localcreds
from tools.local import endpoint as local_endpoint
from tools.local import provision, stats, triggers
from tools.local.console import Console, build_console
from tools.local.httpserver import Limits, LocalHTTPServer

log = logging.getLogger("sealq.devserver")

# The repository (tools/local/ is two levels below it): app.py, .chalice/, .sealq/.
PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9324
DEFAULT_APP = "app:app"
DEFAULT_REGION = "us-east-1"
# moto accepts any credentials; these only keep botocore from searching for real ones.
_DUMMY_CREDENTIALS = local_endpoint.MOTO_CREDENTIALS
# Credential sources that would otherwise win over, or mix with, the dummy pair.
_CREDENTIAL_SOURCES = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE")
_QUIET_LOGGERS = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "aws_encryption_sdk",
    "werkzeug",
    "moto",
)


class Backend(Enum):
    EMBEDDED = "embedded moto"
    ENDPOINT = "endpoint"
    AWS = "aws"


class DevServerError(Exception):
    """The stack cannot start; the message is meant for the operator, no traceback."""


def backend_of(environ: Mapping[str, str]) -> Backend:
    """Which AWS the stack talks to, from ``SEALQ_AWS_ENDPOINT``."""
    endpoint = environ.get("SEALQ_AWS_ENDPOINT", "").strip()
    if not endpoint:
        return Backend.EMBEDDED
    if endpoint == "aws":
        return Backend.AWS
    return Backend.ENDPOINT


def configure_environment(
    environ: MutableMapping[str, str], moto_url: str | None = None
) -> dict[str, str | None]:
    """Point the process at its backend; return the previous value of every name changed.

    The embedded moto always gets the dummy credentials (dropping any profile or
    token), so code that bypasses the endpoint fails instead of reaching a real
    account. An external endpoint gets them only when no credentials are
    configured (LocalStack may expect particular ones). Real AWS is left alone.
    """
    changes: dict[str, str | None] = {}
    backend = backend_of(environ)
    if backend is Backend.AWS:
        return changes
    if backend is Backend.EMBEDDED:
        if moto_url is None:
            raise ValueError("the embedded backend needs the moto URL")
        changes["SEALQ_AWS_ENDPOINT"] = moto_url
        changes.update({name: None for name in _CREDENTIAL_SOURCES})
        changes.update(_DUMMY_CREDENTIALS)
    elif not (environ.get("AWS_ACCESS_KEY_ID") or environ.get("AWS_PROFILE")):
        changes.update(_DUMMY_CREDENTIALS)
    if not (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")):
        changes["AWS_DEFAULT_REGION"] = DEFAULT_REGION
    return _apply(environ, changes)


def _apply(
    environ: MutableMapping[str, str], changes: Mapping[str, str | None]
) -> dict[str, str | None]:
    """Set (or, for None, remove) names; return what they were before."""
    previous: dict[str, str | None] = {}
    for name, value in changes.items():
        old = environ.get(name)
        if old == value:
            continue
        previous[name] = old
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return previous


def load_app(spec: str = DEFAULT_APP) -> Any:
    """Import the Chalice app named ``module:attribute``, with the repo root importable.

    Called only after the environment is final: the app may read settings on
    import (it must not call AWS then, see DESIGN.md).
    """
    module_name, _, attribute = spec.partition(":")
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise DevServerError(
            f"cannot import {module_name!r} (looked in {PROJECT_DIR} and sys.path)"
        ) from None
    try:
        return getattr(module, attribute or "app")
    except AttributeError:
        raise DevServerError(f"{module_name!r} has no attribute {attribute!r}") from None


def _chalice_config(app: Any) -> Any:
    """A chalice Config as ``chalice local`` builds it, minus the environment variables.

    The on-disk config gives the Lambda context its timeout and memory size. Its
    environment variables describe the deployment (e.g. the key service as a
    Lambda function) and are deliberately not applied here.
    """
    from chalice.config import Config

    config_from_disk: dict[str, Any] = {}
    config_file = PROJECT_DIR / ".chalice" / "config.json"
    if config_file.is_file():
        import json

        try:
            config_from_disk = json.loads(config_file.read_text())
        except ValueError as err:
            raise DevServerError(f"{config_file} is not valid JSON: {err}") from None
    return Config(
        chalice_stage="dev",
        user_provided_params={"chalice_app": app, "project_dir": str(PROJECT_DIR)},
        config_from_disk=config_from_disk,
        default_params={"app_name": "sealq", "project_dir": str(PROJECT_DIR)},
    )


def _local_server(app: Any, host: str, port: int, limits: Limits) -> LocalHTTPServer:
    """sealq's local HTTP server around the app, bound (in its constructor) but not serving."""
    return LocalHTTPServer((host, port), app, _chalice_config(app), limits)


@dataclass
class LocalStack:
    """A running stack: the HTTP server thread and, if embedded, moto. ``stop()`` undoes all."""

    url: str
    aws_endpoint: str | None
    backend: Backend
    created: list[str]
    _http: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _moto: Any = field(repr=False, default=None)
    # The local account's access key (profile ``sealq-local``), when one was set up.
    local_key: localcreds.LocalKey | None = None
    _restore_env: dict[str, str | None] = field(repr=False, default_factory=dict)
    _stopped: bool = field(repr=False, default=False)
    # The local event source mappings: the triggers' workers.
    _triggers: Any = field(repr=False, default=None)
    # The console at /console/ (tools.local.console), when the server listens on loopback.
    console: Console | None = field(repr=False, default=None)

    def stop(self) -> None:
        """Stop serving, close the socket, stop moto, restore the environment (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._triggers is not None:
            self._triggers.stop()
        if self.console is not None:
            self.console.stop()
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)
        _teardown(self._moto, self._restore_env)

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _state_dir() -> Path:
    """Where the local stack keeps its state (``.sealq/`` under the project, git-ignored);
    ``SEALQ_LOCAL_DIR`` moves it (tests)."""
    return Path(os.environ.get("SEALQ_LOCAL_DIR") or PROJECT_DIR / ".sealq")


def _console(conf: settings.Settings, port: int, host: str, backend: Backend, url: str
             ) -> Console | None:
    """The console for a server bound to ``host``: only where a loopback address reaches
    it (it answers loopback peers only)."""
    loopback = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "[::1]",
                "0.0.0.0": "127.0.0.1", "::": "127.0.0.1", "": "127.0.0.1"}
    if host not in loopback and not host.startswith("127."):
        log.info("no console: %s is not a loopback address", host)
        return None
    stack = {"url": url, "aws": conf.aws_endpoint or "real AWS", "backend": backend.value}
    return build_console(conf, port, embedded=backend is Backend.EMBEDDED, stack=stack,
                               host=loopback.get(host, host))


def _teardown(moto: Any, restore_env: Mapping[str, str | None]) -> None:
    if moto is not None:
        moto.stop()
    _apply(os.environ, restore_env)
    container.reset()


def start(
    port: int = 0,
    host: str = DEFAULT_HOST,
    *,
    app: Any = None,
    app_spec: str = DEFAULT_APP,
    limits: Limits | None = None,
) -> LocalStack:
    """Start the whole stack in this process; serving when it returns.

    ``app`` is a Chalice app object (tests pass a stub); without it ``app_spec``
    is imported once the environment is set. ``limits`` bound request bodies and
    stalled connections (API Gateway's by default).
    """
    moto = None
    restore: dict[str, str | None] = {}
    console: Console | None = None
    try:
        backend = backend_of(os.environ)
        moto_url = None
        if backend is Backend.EMBEDDED:
            from moto.server import ThreadedMotoServer

            moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            moto.start()
            moto_host, moto_port = moto.get_host_and_port()
            moto_url = f"http://{moto_host}:{moto_port}"
            log.info("embedded moto on %s", moto_url)
        restore = configure_environment(os.environ, moto_url)
        if backend is not Backend.AWS and "AWS_ACCESS_KEY_ID" in restore:
            log.info("using dummy AWS credentials for %s", backend.value)
        container.reset()
        conf = settings.get()
        if conf.key_service_function:
            log.warning(
                "SEALQ_KEY_SERVICE_FUNCTION=%s: the handler will invoke that Lambda function "
                "instead of the in-process key service",
                conf.key_service_function,
            )
        try:
            created = provision.ensure_resources()
        except (BotoCoreError, ClientError) as err:
            where = conf.aws_endpoint or "AWS"
            raise DevServerError(f"cannot prepare resources at {where}: {err}") from None
        try:
            local_key = localcreds.ensure_local_key(
                admin.accounts(conf), conf.default_account, _state_dir())
        except (BotoCoreError, ClientError, StorageError, KeyServiceError) as err:
            where = conf.aws_endpoint or "AWS"
            raise DevServerError(
                f"cannot prepare the local access key at {where}: {type(err).__name__}"
            ) from None
        if app is None:
            app = load_app(app_spec)
        try:
            http = _local_server(app, host, port, limits or Limits())
        except OSError as err:
            raise DevServerError(f"cannot listen on {host}:{port}: {err.strerror}") from None
        bound_host, bound_port = http.socket.getsockname()[:2]
        console = _console(conf, bound_port, host, backend, f"http://{bound_host}:{bound_port}")
        http.console = console
        thread = threading.Thread(target=http.serve_forever, name="sealq-http", daemon=True)
        thread.start()
        runner = triggers.runner(conf)
        runner.start()
    except BaseException:
        if console is not None:
            console.stop()
        _teardown(moto, restore)
        raise
    return LocalStack(
        url=f"http://{bound_host}:{bound_port}",
        aws_endpoint=conf.aws_endpoint,
        backend=backend,
        created=created,
        _http=http,
        _thread=thread,
        _moto=moto,
        _restore_env=restore,
        local_key=local_key,
        _triggers=runner,
        console=console,
    )


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {raw!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.devserver",
        description="Run sealq locally (embedded moto unless SEALQ_AWS_ENDPOINT is set).",
    )
    parser.add_argument("--host", help=f"listen address (SEALQ_HOST, default {DEFAULT_HOST})")
    parser.add_argument(
        "--port", type=_port, help=f"listen port, 0 = any free (SEALQ_PORT, default {DEFAULT_PORT})"
    )
    parser.add_argument("--app", default=DEFAULT_APP, help="Chalice app as module:attribute")
    args = parser.parse_args(argv)
    if args.host is None:
        args.host = environ.get("SEALQ_HOST") or DEFAULT_HOST
    if args.port is None:
        raw = environ.get("SEALQ_PORT") or str(DEFAULT_PORT)
        try:
            args.port = _port(raw)
        except argparse.ArgumentTypeError as err:
            parser.error(f"SEALQ_PORT: {err}")
    return args


def write_stats(started: float) -> None:
    """The process's metric totals to ``.sealq/stats.json``, for ``make stats``."""
    try:
        stats.write(_state_dir() / stats.STATS_FILE, telemetry.get().totals(), started)
    except OSError as err:
        log.warning("cannot write the stats file: %s", err.strerror)


def endpoint_of(stack: LocalStack, conf: settings.Settings) -> local_endpoint.LocalEndpoint:
    """How another process (``make admin``) reaches this stack: its URLs, region, names."""
    names = {
        "SEALQ_QUEUES_TABLE": conf.queues_table, "SEALQ_KEYS_TABLE": conf.keys_table,
        "SEALQ_ACCOUNTS_TABLE": conf.accounts_table, "SEALQ_PAYLOAD_BUCKET": conf.payload_bucket,
        "SEALQ_DEFAULT_KMS_KEY": conf.default_kms_key,
        "SEALQ_BACKING_QUEUE_PREFIX": conf.backing_queue_prefix,
        "SEALQ_ACCOUNT": conf.default_account,
        "SEALQ_KEY_SERVICE_FUNCTION": conf.key_service_function,
    }
    dummy = stack.backend is not Backend.AWS and os.environ.get(
        "AWS_ACCESS_KEY_ID") == _DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"]
    return local_endpoint.LocalEndpoint(
        url=stack.url, backend=stack.backend.value, aws_endpoint=stack.aws_endpoint,
        region=conf.region, settings={k: v for k, v in names.items() if v},
        dummy_credentials=dummy, pid=os.getpid())


def _log_level(name: str) -> int:
    return logging.getLevelNamesMapping().get(name.upper(), logging.INFO)


def _announce(stack: LocalStack) -> None:
    """The stdout contract: what was created, then one ``listening on`` line, then a hint."""
    if stack.created:
        print(f"sealq: created {', '.join(stack.created)}")
    else:
        print("sealq: tables, bucket and default key already present")
    where = stack.aws_endpoint or "real AWS"
    print(f"sealq listening on {stack.url} (AWS: {where}; Ctrl-C to stop)")
    if stack.console is not None:
        print(f"sealq console: {stack.console.url} (this machine only; the token is this run's)")
    key = stack.local_key
    if key is not None:
        print(f"sealq: account {key.account}, access key {key.access_key_id}: "
              f"profile {localcreds.PROFILE} in {key.credentials_file}")
        print(
            f"try: AWS_SHARED_CREDENTIALS_FILE={key.credentials_file} aws --profile "
            f"{localcreds.PROFILE} --region {settings.get().region} --endpoint-url {stack.url} "
            "sqs create-queue --queue-name orders",
            flush=True,
        )


def run(argv: Sequence[str] | None = None) -> int:
    """Run until SIGINT or SIGTERM; 0 on a clean stop, 1 if the stack cannot start."""
    try:
        args = _parse_args(argv, os.environ)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        conf = settings.from_environ(os.environ)
    except settings.SettingsError as err:
        print(f"sealq: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        stream=sys.stderr, level=_log_level(conf.log_level), format="%(name)s: %(message)s"
    )
    # Never below WARNING, whatever SEALQ_LOG_LEVEL says: botocore's debug log carries
    # request bodies (plaintext messages) and signed headers; werkzeug is moto's access log.
    for noisy in _QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, _log_level(conf.log_level)))

    stopping = threading.Event()
    serving = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        if not serving.is_set():
            raise KeyboardInterrupt  # abort a startup that may be waiting on the network

    previous = {
        signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            stack = start(args.port, args.host, app_spec=args.app)
        except KeyboardInterrupt:
            log.info("interrupted during startup")
            return 0
        except (DevServerError, settings.SettingsError) as err:
            log.error("%s", err)
            return 1
        serving.set()
        # Chalice sets its app's logger ("sealq") to INFO when app.py loads.
        logging.getLogger("sealq").setLevel(_log_level(conf.log_level))
        started = time.time()
        endpoint_file = _state_dir() / local_endpoint.ENDPOINT_FILE
        try:
            # Before the announcement: whoever reads "listening on" finds the file.
            try:
                local_endpoint.write(endpoint_file, endpoint_of(stack, settings.get()))
            except OSError as err:
                log.warning("cannot write %s: %s (make admin will not find this stack)",
                            endpoint_file, err.strerror)
            _announce(stack)
            next_write = 0.0
            while not stopping.wait(0.5):
                if time.monotonic() >= next_write:
                    write_stats(started)
                    next_write = time.monotonic() + stats.WRITE_INTERVAL
            log.info("stopping")
        finally:
            local_endpoint.remove(endpoint_file, os.getpid())
            write_stats(started)
            stack.stop()
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
