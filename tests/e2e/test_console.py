"""The console of `make run` in a real browser: Debian's headless Chromium, driven by Playwright.

The module starts its own ``python -m tools.local.devserver`` (its counters start at
zero and its startup lines carry the console's URL and token), creates queues and
sends messages with boto3, opens the console in one browser session for the whole
module, and reads the page as a person would: the queue list and its counts, the KMS
chart growing with traffic, the records at rest. Screenshots are kept under
``test-artifacts/`` (git-ignored; ``SEALQ_TEST_ARTIFACTS`` moves them). `make test`
installs Chromium where it is missing; the driver is pinned in requirements-dev.txt.
"""

from __future__ import annotations

import http.client
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.config import Config

from tests.e2e.conftest import REPO_ROOT, Server, running_devserver

pytestmark = pytest.mark.e2e

# Debian's (make test installs it); SEALQ_CHROMIUM names another (read once: the per-test
# fixtures of tests/conftest.py clear SEALQ_*).
CHROMIUM = Path(os.environ.get("SEALQ_CHROMIUM") or "/usr/bin/chromium")
# As this machine's browser runs: no sandbox (root), no network of its own.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("SEALQ_TEST_ARTIFACTS") or REPO_ROOT / "test-artifacts")
ACCOUNT = "000000000000"
REGION = "us-east-1"
WAIT_MS = 30_000
# Receives that may take to open the 60 messages of the chart's traffic (10 a time at best).
RECEIVE_ATTEMPTS = 30
# Unique, so that finding one anywhere on a page can only mean it leaked.
BODY = f"plaintext-body-{uuid.uuid4().hex[:12]}"
ATTRIBUTE = f"attribute-value-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Stack:
    server: Server
    console_url: str

    @property
    def port(self) -> int:
        return int(urlsplit(self.server.url).port or 0)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``make run`` as a developer starts it, until SIGINT; it must stop cleanly."""
    state = tmp_path_factory.mktemp("console-stack")
    with running_devserver(state) as output:
        if output.console_url is None or output.url is None:
            pytest.fail(f"no console line from the devserver\n{''.join(output.lines)}")
        yield Stack(Server(output.url, output.aws_endpoint, state / "credentials"),
                    output.console_url)


@pytest.fixture(scope="module")
def sqs(stack: Stack) -> Any:
    return stack.server.session().client("sqs", endpoint_url=stack.server.url, config=Config(
        retries={"total_max_attempts": 1, "mode": "standard"}))


@pytest.fixture(scope="module")
def queues(sqs: Any) -> dict[str, str]:
    """orders (redriving to orders-dlq after 3 receives): 3 visible, 2 in flight, 1 delayed;
    payments.fifo: 4 visible; orders-dlq: empty."""
    dlq = sqs.create_queue(QueueName="orders-dlq")["QueueUrl"]
    orders = sqs.create_queue(QueueName="orders", Attributes={"RedrivePolicy": json.dumps({
        "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-dlq",
        "maxReceiveCount": 3})})["QueueUrl"]
    fifo = sqs.create_queue(QueueName="payments.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true",
        "KmsDataKeyReusePeriodSeconds": "3600"})["QueueUrl"]
    attributes = {"customer": {"DataType": "String", "StringValue": ATTRIBUTE}}
    for n in range(5):
        sqs.send_message(QueueUrl=orders, MessageBody=f"{BODY} {n}", MessageAttributes=attributes)
    sqs.send_message(QueueUrl=orders, MessageBody=f"{BODY} later", DelaySeconds=900)
    held = sqs.receive_message(QueueUrl=orders, MaxNumberOfMessages=2, VisibilityTimeout=900)
    assert len(held["Messages"]) == 2
    for n in range(4):
        sqs.send_message(QueueUrl=fifo, MessageBody=f"{BODY} pay {n}", MessageGroupId=f"g{n}")
    return {"orders": orders, "orders-dlq": dlq, "payments.fifo": fifo}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module, with a profile of its own."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                    "(apt-get install chromium); SEALQ_CHROMIUM names another")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def page_errors() -> list[str]:
    """What the page's scripts threw or logged as errors (every test expects none)."""
    return []


@pytest.fixture(scope="module")
def page(browser: Any, stack: Stack, queues: dict[str, str], page_errors: list[str]
         ) -> Iterator[Any]:
    """The console, opened once with the URL the dev server printed."""
    opened = browser.new_page()
    opened.set_default_timeout(WAIT_MS)
    opened.on("pageerror", lambda error: page_errors.append(str(error)))
    opened.on("console", lambda message: page_errors.append(message.text)
              if message.type == "error" else None)
    opened.goto(stack.console_url)
    yield opened
    opened.close()


def cell(page: Any, queue: str, field: str) -> str:
    return str(page.locator(f'tr[data-queue="{ACCOUNT}/{queue}"] td[data-field="{field}"]')
               .inner_text()).strip()


def wait_for_cell(page: Any, queue: str, field: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => { const el = document.querySelector(selector);"
        " return el !== null && el.textContent.trim() === text; }",
        arg=[f'tr[data-queue="{ACCOUNT}/{queue}"] td[data-field="{field}"]', text])


def wait_for_chart_at_its_width(page: Any) -> None:
    """Until the KMS chart has been drawn at the width it is shown (chart.js sets its viewBox
    to the svg's clientWidth, at least 280, on every draw)."""
    page.wait_for_function(
        "() => { const svg = document.querySelector('#kms-chart');"
        " return svg.viewBox.baseVal.width === Math.max(280, Math.round(svg.clientWidth)); }")


def chart(page: Any) -> dict[str, float]:
    data = page.eval_on_selector("#kms-chart", "svg => ({perMessage: svg.dataset.perMessage,"
                                 " made: svg.dataset.made, points: svg.dataset.points})")
    return {name: float(value) for name, value in data.items() if value is not None}


def raw_get(stack: Stack, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


# -- the gate, on the real server ------------------------------------------------------------


def test_the_console_refuses_every_request_without_this_runs_token(stack: Stack) -> None:
    token = stack.console_url.split("token=", 1)[1]
    for path in ("/console/", "/console/api/queues", "/console/api/live",
                 "/console/static/console.js", f"/console/api/stored/{ACCOUNT}/orders"):
        status, headers, body = raw_get(stack, path)
        assert status == 401, path
        assert b"queues" not in body and "Set-Cookie" not in headers
        assert raw_get(stack, path, {"Cookie": f"sealq_console_{stack.port}=not-{token}"}
                       )[0] == 401
    status, headers, _ = raw_get(stack, f"/console/?token={token}")
    assert status == 303 and "HttpOnly" in headers["Set-Cookie"]
    cookie = {"Cookie": f"sealq_console_{stack.port}={token}"}
    assert raw_get(stack, "/console/api/queues", cookie)[0] == 200
    assert raw_get(stack, "/console/api/queues", {**cookie, "Host": "rebound.example"})[0] == 403
    assert raw_get(stack, "/console/api/queues", cookie, method="POST")[0] == 405


def test_the_sqs_api_on_the_same_port_is_not_the_consoles(stack: Stack, sqs: Any) -> None:
    """A queue may be called console; an unsigned request is refused as SQS refuses it,
    console cookie or not."""
    url = sqs.create_queue(QueueName="console")["QueueUrl"]
    assert urlsplit(url).path == f"/{ACCOUNT}/console"
    sqs.send_message(QueueUrl=url, MessageBody="to the queue named console")
    (got,) = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    assert got["Body"] == "to the queue named console"
    sqs.delete_queue(QueueUrl=url)
    token = stack.console_url.split("token=", 1)[1]
    status, headers, body = raw_get(stack, "/", {
        "Cookie": f"sealq_console_{stack.port}={token}", "Content-Type":
        "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ListQueues"}, method="POST")
    assert status == 403
    assert json.loads(body)["__type"].endswith("#MissingAuthenticationTokenException")
    assert headers["x-amzn-query-error"] == "MissingAuthenticationToken;Sender"
    assert "Content-Security-Policy" not in headers


# -- the page ---------------------------------------------------------------------------------


def test_the_console_lists_the_queues_with_their_counts_and_links(
        page: Any, page_errors: list[str]) -> None:
    assert page.url.endswith("/console/")  # the token left the address bar
    wait_for_cell(page, "orders", "visible", "3")
    assert (cell(page, "orders", "inFlight"), cell(page, "orders", "delayed")) == ("2", "1")
    assert cell(page, "orders", "type") == "standard"
    assert cell(page, "payments.fifo", "type") == "FIFO"
    assert cell(page, "payments.fifo", "visible") == "4"
    assert cell(page, "payments.fifo", "reuse") == "3600 s"
    assert cell(page, "orders", "reuse") == "300 s"
    assert cell(page, "orders", "cmk").startswith("default")
    assert cell(page, "orders", "dlq") == "orders-dlq"
    assert cell(page, "orders-dlq", "sources") == "orders"
    assert cell(page, "orders-dlq", "visible") == "0"
    assert cell(page, "orders", "quarantined") == "0"
    link = page.locator(f'tr[data-queue="{ACCOUNT}/orders"] td[data-field="dlq"] a')
    assert link.get_attribute("href") == f"#queue/{ACCOUNT}/orders-dlq"
    page.wait_for_selector('tr[data-action="SendMessage"]')
    sent = page.locator('tr[data-action="SendMessage"] td[data-field="requests"]').inner_text()
    assert int(sent) >= 9
    assert page_errors == []


def test_the_kms_chart_shows_the_saving_grow_with_traffic(
        page: Any, sqs: Any, page_errors: list[str]) -> None:
    page.wait_for_function("() => Number(document.querySelector('#kms-chart').dataset.points) > 1")
    before = chart(page)
    line = page.locator('#kms-chart polyline[data-series="per-message"]').get_attribute("points")
    assert before["perMessage"] > before["made"] >= 1
    url = sqs.create_queue(QueueName="traffic")["QueueUrl"]
    for batch in range(6):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "MessageBody": f"{BODY} {batch}-{n}"} for n in range(10)])
    opened = 0
    for _ in range(RECEIVE_ATTEMPTS):  # bounded: no pytest-timeout stops a hung loop
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if got:
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])
        opened += len(got)
        if opened >= 60:
            break
    assert opened == 60
    # 60 seals and 60 opens: 120 KMS requests more in a per-message scheme; sealq makes
    # one, the new queue's data key.
    page.wait_for_function(
        "() => Number(document.querySelector('#kms-chart').dataset.perMessage) >= "
        f"{before['perMessage'] + 120}")
    after = chart(page)
    assert after["made"] - before["made"] <= 1
    assert after["perMessage"] - after["made"] >= before["perMessage"] - before["made"] + 119
    assert page.locator('#kms-chart polyline[data-series="per-message"]').get_attribute(
        "points") != line
    saved = page.locator("#kms-saved").inner_text()
    assert int(saved.split()[0].replace(",", "")) == after["perMessage"] - after["made"]
    assert page_errors == []


def test_the_stored_view_shows_sealed_records_and_never_the_plaintext(
        page: Any, page_errors: list[str]) -> None:
    page.locator(f'tr[data-queue="{ACCOUNT}/orders"] a.queue-name').click()
    page.wait_for_selector("#stored tr[data-message]")
    page.wait_for_function(
        "() => document.querySelectorAll('#stored tr[data-message]').length === 5")
    rows = page.locator("#stored tr[data-message]")
    states = sorted(rows.nth(n).locator('td[data-field="state"]').inner_text() for n in range(5))
    assert states == ["in flight", "in flight", "visible", "visible", "visible"]
    for n in range(5):
        row = rows.nth(n)
        assert row.locator('td[data-field="suite"]').inner_text() == "0x0478"
        assert row.locator('td[data-field="cmkArn"]').inner_text().startswith("key/")
        assert row.locator('td[data-field="sealedFor"]').inner_text().startswith("orders #")
        assert row.locator('td[data-field="where"]').inner_text() == "inline"
    record = page.locator("#record").inner_text()
    assert f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders" in record
    assert "AES_256_GCM_HKDF_SHA512_COMMIT_KEY" in record and "arn:aws:kms:" in record
    shown = page.content()
    assert BODY not in shown and ATTRIBUTE not in shown
    page.locator("a.back").click()
    page.wait_for_selector("#overview:not([hidden])")
    assert BODY not in page.content() and ATTRIBUTE not in page.content()
    assert page_errors == []


def test_the_console_fits_a_desk_and_a_phone_and_is_kept_as_screenshots(
        page: Any, sqs: Any, page_errors: list[str]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sqs.create_queue(QueueName="screenshots")
    page.wait_for_selector(f'tr[data-queue="{ACCOUNT}/screenshots"]')  # a list drawn since
    wait_for_cell(page, "orders", "visible", "3")
    page.wait_for_function("() => document.querySelector('#status').dataset.state === 'live'")
    page.screenshot(path=str(ARTIFACTS / "console-1280.png"), full_page=True)
    wide = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= 1280
    page.set_viewport_size({"width": 390, "height": 844})
    wait_for_chart_at_its_width(page)  # the chart redraws at the new width on its next poll
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert fits, "the page scrolls sideways at a phone's width"
    display = page.eval_on_selector(f'tr[data-queue="{ACCOUNT}/orders"]',
                                    "row => getComputedStyle(row).display")
    assert display == "block"  # one card per queue
    assert page.locator(f'tr[data-queue="{ACCOUNT}/orders"] td[data-field="visible"]'
                        ).is_visible()
    page.screenshot(path=str(ARTIFACTS / "console-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.locator(f'tr[data-queue="{ACCOUNT}/orders"] a.queue-name').click()
    page.wait_for_selector("#stored tr[data-message]")
    page.screenshot(path=str(ARTIFACTS / "console-stored-1280.png"), full_page=True)
    for name in ("console-1280.png", "console-390.png", "console-stored-1280.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
    assert page_errors == []
