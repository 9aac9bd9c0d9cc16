"""Presigned query-API URLs through the real server, fetched with plain ``curl``: signed
with botocore's ``SigV4QueryAuth``, they work until their X-Amz-Expires, and only for the
signer's own queues (or those shared with it)."""

from __future__ import annotations

import datetime
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest
from botocore.credentials import Credentials

from chalicelib import settings
from tests.e2e import receive
from tests.e2e.conftest import REGION, Server
from tests.presigned import presign, send_message_params
from tests.query_client import NAMESPACE

pytestmark = pytest.mark.e2e

NS = {"q": NAMESPACE}


def curl(url: str) -> tuple[int, ET.Element]:
    """``curl URL``, nothing else: the status and the XML it answered."""
    executable = shutil.which("curl")
    if executable is None:
        pytest.fail("curl is not installed (apt-get install curl)")
    done = subprocess.run(
        [executable, "--silent", "--show-error", "--globoff", "--max-time", "30",
         "--write-out", "\n%{http_code}", url],
        capture_output=True, text=True, timeout=60, check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), ET.fromstring(body)


def _credentials(server: Server) -> Credentials:
    key = server.credentials
    return Credentials(key["AWS_ACCESS_KEY_ID"], key["AWS_SECRET_ACCESS_KEY"])


def test_a_presigned_send_message_url_works_with_plain_curl(
    sealq_server: Server, sqs: Any, queue_name: Callable[[str], str]
) -> None:
    url = sqs.create_queue(QueueName=queue_name("presigned"))["QueueUrl"]
    signed = presign(url, send_message_params("from curl"), _credentials(sealq_server),
                     region=REGION, expires=5)
    status, root = curl(signed)
    assert status == 200, ET.tostring(root)
    assert root.tag == f"{{{NAMESPACE}}}SendMessageResponse"
    message_id = root.findtext("q:SendMessageResult/q:MessageId", namespaces=NS)
    got = receive(sqs, url)
    assert [(m["MessageId"], m["Body"]) for m in got] == [(message_id, "from curl")]
    sqs.delete_queue(QueueUrl=url)


def test_the_same_url_after_its_x_amz_expires_answers_403(
    sealq_server: Server, sqs: Any, queue_name: Callable[[str], str]
) -> None:
    """Signed 10 s ago for 5 s: the URL is what the first test's is once it has expired."""
    url = sqs.create_queue(QueueName=queue_name("expired"))["QueueUrl"]
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=10)
    signed = presign(url, send_message_params("too late"), _credentials(sealq_server),
                     region=REGION, expires=5, signed_at=past)
    status, root = curl(signed)
    assert status == 403
    assert root.findtext("q:Error/q:Code", namespaces=NS) == "SignatureDoesNotMatch"
    assert (root.findtext("q:Error/q:Message", namespaces=NS) or "").startswith(
        "Signature expired: ")
    assert receive(sqs, url, timeout=2) == []
    sqs.delete_queue(QueueUrl=url)


def test_a_presigned_url_of_one_account_cannot_reach_another_accounts_queue(
    sealq_server: Server, sqs: Any, queue_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if sealq_server.aws_endpoint is None:
        pytest.skip("the server's AWS endpoint is unknown")
    from tools.admin import cli as admin
    monkeypatch.setenv("SEALQ_AWS_ENDPOINT", sealq_server.aws_endpoint)
    settings.reset()
    ops = admin.accounts(settings.get())
    key = ops.create_access_key(ops.create_account("e2e-presigner").account_id)
    theirs = Credentials(key.access_key_id, key.secret_access_key)
    url = sqs.create_queue(QueueName=queue_name("not-theirs"))["QueueUrl"]
    status, root = curl(presign(url, send_message_params("intruder"), theirs, region=REGION))
    assert status == 403
    assert root.findtext("q:Error/q:Code", namespaces=NS) == "AccessDenied"
    assert receive(sqs, url, timeout=2) == []
    sqs.delete_queue(QueueUrl=url)
