"""``make admin`` in a second shell while ``make run`` serves: no variable set, the
running local stack is the one it acts on (README: the commands "act on the local
stack")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.e2e.conftest import REGION, REPO_ROOT, Server

pytestmark = pytest.mark.e2e


def admin(server: Server, *args: str) -> tuple[int, str, str]:
    """``python -m tools.admin ARGS`` in a fresh process: no AWS_* or SEALQ_* variable,
    only the server's own state folder (a developer's is the project's ``.sealq/``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SEALQ_"))}
    env["SEALQ_LOCAL_DIR"] = str(server.credentials_file.parent)
    done = subprocess.run([sys.executable, "-m", "tools.admin", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout, done.stderr


def last_json(text: str) -> dict[str, Any]:
    return dict(json.loads(text.strip().splitlines()[-1]))


def test_make_admin_reaches_the_running_local_stack_with_no_variables_set(
    sealq_server: Server,
) -> None:
    if sealq_server.aws_endpoint is None:
        pytest.skip("a server started elsewhere writes no endpoint file here")
    code, out, err = admin(sealq_server, "list-accounts")
    assert code == 0, err
    assert {"AccountId": "000000000000", "AccountName": "local", "KmsKeys": []} in last_json(
        out)["Accounts"]

    code, out, err = admin(sealq_server, "create-account", "second-shell")
    assert code == 0, err
    created = last_json(out)
    # The key it made is one the running server accepts: the very same stack.
    sqs = boto3.session.Session(
        aws_access_key_id=created["AccessKeyId"],
        aws_secret_access_key=created["SecretAccessKey"], region_name=REGION,
    ).client("sqs", endpoint_url=sealq_server.url,
             config=Config(retries={"total_max_attempts": 1}))
    url = sqs.create_queue(QueueName="from-the-second-shell")["QueueUrl"]
    assert url == f"{sealq_server.url}/{created['AccountId']}/from-the-second-shell"
    code, out, err = admin(sealq_server, "quarantine-count", created["AccountId"],
                           "from-the-second-shell")
    assert (code, last_json(out)) == (0, {"Queue": "from-the-second-shell", "Count": 0}), err
