"""Never a 500, and a refusal changes nothing: random SQS JSON 1.0 requests over raw HTTP.

Hypothesis draws requests for the 23 SQS operations (parameter names and types from
botocore's SQS model) and for unknown ones, with odd values in every slot: lone
surrogates sent as ``\\ud800`` escapes, control characters, huge strings, numbers where
strings belong, nested objects, malformed JSON, and QueueUrls from valid ones of two
pre-created queues to ``http://[::1/x``. For every response:

* the status is below 500, and the body is a JSON object; a 4xx body is SQS's error
  shape (``__type`` and ``message``) with the ``x-amzn-query-error`` header;
* a 4xx leaves the store as it was: the registry table, every backing queue's
  attributes and message count, and the payload bucket are snapshotted through the
  server's own AWS endpoint after each request and compared with the previous snapshot.

Every example runs; failures are collected and reported together at the end, grouped
by kind, each 500 with the innermost frame the server logged for it. The run is
derandomized (same examples every time); ``SEALQ_FUZZ_EXAMPLES`` sets the count,
``SEALQ_FUZZ_SEED`` picks another fixed seed, ``SEALQ_FUZZ_DUMP=path`` writes every
failing request as a JSON line.

Two things are held back so the run stays short, not to hide anything: a wait of
2-20 s (``WaitTimeSeconds`` or the queue's ``ReceiveMessageWaitTimeSeconds``) becomes
0, and a retention below 600 s becomes 600 so counts do not expire mid-run.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from chalicelib.aws import service_model
from tests.e2e.conftest import CREDENTIALS, REGION, Server

pytestmark = pytest.mark.e2e

# Read at import: the per-test fixtures of tests/conftest.py clear SEALQ_*.
EXAMPLES = int(os.environ.get("SEALQ_FUZZ_EXAMPLES", "150"))
DUMP_PATH = os.environ.get("SEALQ_FUZZ_DUMP", "")
# Another fixed seed explores other examples; unset, the run is derandomized.
SEED = os.environ.get("SEALQ_FUZZ_SEED", "")
QUEUES_TABLE = "sealq-queues"
PAYLOAD_BUCKET = "sealq-payloads"
HTTP_TIMEOUT = 30.0

MODEL = botocore.session.get_session().get_service_model("sqs")

# -- values -------------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "x",
    "\ud800",
    "\udfff",
    "a\ud800b",
    "\udc00\ud800",
    "\x00",
    "nul\x00byte",
    "\x08\x1f\x7f",
    "\ufffe",
    "\uffff",
    "\t\n\r",
    "😀",
    "\U0010ffff",
    "é",
    "日本語",
    "\u202e\u200b",
    "null",
    "true",
    "0",
    "-1",
    "1",
    " 30 ",
    "+30",
    "030",
    "1e3",
    "NaN",
    "{}",
    "[]",
    '{"a":',
    "alias/sealq-default",
    "alias/nope",
    "aws:tag",
    "%00",
    "../../x",
    "a" * 81,
    "a" * 129,
    "a" * 257,
    "x" * 300_000,
    "é" * 70_000,
    "\ud800" * 2_000,
]
ATTRIBUTE_VALUES = [
    "0",
    "30",
    " 30 ",
    "+30",
    "030",
    "-1",
    "43201",
    "1024",
    "true",
    "false",
    "TRUE",
    "",
    "alias/sealq-default",
    "alias/nope",
    "alias/\ud800",
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    json.dumps({"Version": "2012-10-17", "Statement": []}),
    '{"Id": "\\ud800"}',
    "[]",
    "{" * 50,
    json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:nope",
                "maxReceiveCount": 3}),
    '{"maxReceiveCount": "x"}',
]
DATA_TYPES = ["String", "Number", "Binary", "String.json", "Number.int", "Binary.gif",
              "String.\ud800", "Number.a\x00b", "Str", "string", "", "String."]
ENTRY_IDS = ["a", "b", "1", "a", "", "bad id", "\ud800", "x" * 81]


def _text() -> st.SearchStrategy[str]:
    pieces = st.one_of(
        st.sampled_from(NASTY[:-3]),
        st.integers(0xD800, 0xDFFF).map(chr),
        st.characters(),
    )
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(max_size=20),
        st.lists(pieces, max_size=6).map("".join),
    )


TEXT = _text()
JSON_ANY: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
INTEGERS = st.one_of(
    st.integers(-3, 30),
    st.sampled_from([900, 901, 1000, 1001, 43200, 43201, 2**31, -(2**31) - 1, 2**63, 10**30]),
)


def _sometimes_wrong(typed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the modeled type; one time in ten any JSON value at all."""
    return st.integers(0, 9).flatmap(lambda n: JSON_ANY if n == 0 else typed)


@dataclass
class Targets:
    """What the requests aim at: real queues of this run, a real receipt handle."""

    urls: list[str]
    deletable: list[str]
    names: list[str]
    handles: list[str]
    account: str


def _queue_urls(targets: Targets, *, deletable: bool) -> st.SearchStrategy[str]:
    real = targets.deletable if deletable else targets.urls
    base = real[0].rsplit("/", 2)[0]
    name = real[0].rsplit("/", 1)[1]
    odd = [
        "http://[::1/x",
        "http://[::1]:99999999/x/y",
        name,
        "",
        "/",
        f"{base}/000000000001/{name}",
        f"{base}/{targets.account}/",
        f"{base}/{targets.account}/{name}/extra",
        f"{base}/{targets.account}/{name}?Action=x",
        f"{base}/{targets.account}/nope-{uuid.uuid4().hex[:6]}",
        f"{base}/{targets.account}/\ud800",
        f"{base}/{targets.account}/a b",
        f"{base}/\ud800/{name}",
    ]
    # Mostly a real queue, so that requests get past the queue lookup.
    return st.integers(0, 9).flatmap(
        lambda n: st.sampled_from(real) if n < 7 else st.sampled_from(odd) if n < 9 else TEXT
    )


def _for_shape(shape: Any, name: str, targets: Targets, action: str) -> st.SearchStrategy[Any]:
    """A strategy for one modeled member: special values for the names that matter."""
    special: dict[str, st.SearchStrategy[Any]] = {
        "QueueUrl": _queue_urls(targets, deletable=action == "DeleteQueue"),
        "QueueName": st.one_of(st.sampled_from(targets.names), TEXT),
        "ReceiptHandle": st.one_of(st.sampled_from(targets.handles), TEXT),
        "DataType": st.one_of(st.sampled_from(DATA_TYPES), TEXT),
        "Id": st.sampled_from(ENTRY_IDS),
        "QueueOwnerAWSAccountId": st.sampled_from([targets.account, "000000000001", "x", ""]),
    }
    if name in special:
        return _sometimes_wrong(special[name])
    kind = shape.type_name
    if kind == "string":
        enum = list(getattr(shape, "enum", []) or [])
        typed = st.one_of(st.sampled_from(enum), TEXT) if enum else TEXT
    elif kind == "integer":
        typed = INTEGERS
    elif kind == "boolean":
        typed = st.booleans()
    elif kind == "blob":
        typed = st.one_of(
            st.binary(max_size=20).map(lambda b: base64.b64encode(b).decode()), TEXT
        )
    elif kind == "list":
        member = _for_shape(shape.member, name, targets, action)
        typed = st.lists(member, max_size=11 if name == "Entries" else 4)
    elif kind == "map":
        key_enum = list(getattr(shape.key, "enum", []) or [])
        keys = st.one_of(st.sampled_from(key_enum), TEXT) if key_enum else TEXT
        if name == "MessageSystemAttributes":
            keys = st.one_of(st.just("AWSTraceHeader"), TEXT)
        values = (
            st.one_of(st.sampled_from(ATTRIBUTE_VALUES), TEXT)
            if name == "Attributes"
            else _for_shape(shape.value, name, targets, action)
        )
        typed = st.dictionaries(keys, values, max_size=4)
    elif kind == "structure":
        typed = _structure(shape, targets, action)
    else:  # pragma: no cover - the SQS model has no other types
        typed = JSON_ANY
    return _sometimes_wrong(typed)


def _structure(shape: Any, targets: Targets, action: str) -> st.SearchStrategy[dict[str, Any]]:
    members = {
        member: _for_shape(member_shape, member, targets, action)
        for member, member_shape in shape.members.items()
    }

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for member, strategy in members.items():
            wanted = member in shape.required_members
            if draw(st.integers(0, 19)) < (19 if wanted else 12):
                out[member] = draw(strategy)
        if draw(st.integers(0, 9)) == 0:
            out[draw(TEXT)] = draw(JSON_ANY)
        return out

    return build()


def _keep_it_short(params: Any) -> Any:
    """No 2-20 s waits and no retention under 600 s (see the module docstring)."""
    if not isinstance(params, dict):
        return params
    wait = params.get("WaitTimeSeconds")
    if isinstance(wait, int) and not isinstance(wait, bool) and 2 <= wait <= 20:
        params["WaitTimeSeconds"] = 0
    attributes = params.get("Attributes")
    if isinstance(attributes, dict):
        for name, low, high, safe in (
            ("ReceiveMessageWaitTimeSeconds", 2, 20, "0"),
            ("MessageRetentionPeriod", 0, 599, "600"),
        ):
            value = attributes.get(name)
            try:
                number = int(value) if isinstance(value, str) else None
            except ValueError:
                number = None
            if number is not None and low <= number <= high:
                attributes[name] = safe
    return params


MALFORMED = [
    b"{",
    b'{"QueueUrl": ',
    b"[]",
    b"null",
    b"1",
    b'"text"',
    b"\xff\xfe\x00",
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b"\xef\xbb\xbf{}",
    b"[" * 50_000 + b"]" * 50_000,
    b'{"QueueUrl": "\xed\xa0\x80"}',
    b'{"QueueUrl": "\\ud800"}',
    b'{"a": 1, "a": 2}',
    b"   ",
    b"",
]


@dataclass(frozen=True)
class Request:
    target: str | None
    body: bytes

    def describe(self, limit: int = 300) -> str:
        text = self.body.decode("utf-8", "backslashreplace")
        shown = text if len(text) <= limit else f"{text[:limit]}... ({len(self.body)} bytes)"
        return f"X-Amz-Target={self.target!r} body={shown}"


def _requests(targets: Targets) -> st.SearchStrategy[Request]:
    actions = sorted(service_model.operations())
    params_for = {
        action: _structure(MODEL.operation_model(action).input_shape, targets, action)
        for action in actions
    }

    @st.composite
    def build(draw: Callable[..., Any]) -> Request:
        roll = draw(st.integers(0, 19))
        action = draw(st.sampled_from(actions))
        target: str | None = f"AmazonSQS.{action}"
        if roll == 0:
            target = draw(
                st.one_of(
                    st.none(),
                    st.sampled_from(["AmazonSQS.", "AmazonSQS.Nope", "SQS.SendMessage",
                                     "AmazonSQS.sendmessage", f"amazonsqs.{action}"]),
                    TEXT.map(lambda t: "AmazonSQS." + t),
                )
            )
        if roll == 1:
            return Request(target, draw(st.sampled_from(MALFORMED)))
        params = _keep_it_short(draw(params_for[action]))
        if roll == 2:
            params = draw(JSON_ANY)
        return Request(target, json.dumps(params).encode("ascii"))

    return build()


# -- the server and the store -----------------------------------------------------------


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


def _send(url: str, request: Request, credentials: Credentials) -> Response:
    """The request signed with ``credentials`` (so it reaches the protocol layer), raw."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                      timeout=HTTP_TIMEOUT)
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if request.target is not None:
        # Raw UTF-8 bytes on the wire; CR and LF would end the header, so they go.
        raw_target = request.target.replace("\r", "?").replace("\n", "?")
        headers["X-Amz-Target"] = raw_target.encode("utf-8", "surrogatepass").decode("latin-1")
    signing = AWSRequest(method="POST", url=url.rstrip("/") + "/", data=request.body,
                         headers={**headers, "Host": parts.netloc})
    SigV4Auth(credentials, "sqs", REGION).add_auth(signing)
    headers = {k: v for k, v in signing.headers.items() if k != "Host"}
    try:
        conn.request("POST", "/", body=request.body, headers=headers)
        raw = conn.getresponse()
        return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
    finally:
        conn.close()


class Store:
    """The registry table, the backing queues and the payload bucket, as plain data."""

    def __init__(self, endpoint: str) -> None:
        session = boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )
        self.ddb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.s3 = session.client("s3", endpoint_url=endpoint)

    def snapshot(self) -> dict[str, Any]:
        items: list[str] = []
        for page in self.ddb.get_paginator("scan").paginate(TableName=QUEUES_TABLE):
            items.extend(json.dumps(item, sort_keys=True, default=repr) for item in page["Items"])
        queues: dict[str, dict[str, str]] = {}
        for url in self.sqs.list_queues(MaxResults=1000).get("QueueUrls", []):
            attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get(
                "Attributes", {}
            )
            # Visible, in flight and delayed move between each other with time; their sum
            # changes only when a message is sent, deleted or purged.
            count = sum(int(v) for k, v in attrs.items() if k.startswith("ApproximateNumber"))
            kept = {k: v for k, v in attrs.items() if not k.startswith("ApproximateNumber")}
            queues[url] = {**kept, "messages": str(count)}
        objects = sorted(
            (obj["Key"], obj["Size"], obj["ETag"])
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=PAYLOAD_BUCKET)
            for obj in page.get("Contents", [])
        )
        return {"registry": sorted(items), "queues": queues, "payloads": objects}


def _difference(before: dict[str, Any], after: dict[str, Any]) -> str:
    lines = []
    for part in ("registry", "queues", "payloads"):
        if before[part] == after[part]:
            continue
        if part == "queues":
            for url in sorted(set(before[part]) | set(after[part])):
                old, new = before[part].get(url), after[part].get(url)
                if old != new:
                    changed = (
                        sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                        if old and new
                        else "created" if new else "deleted"
                    )
                    lines.append(f"backing queue {url.rsplit('/', 1)[-1]}: {changed}")
        else:
            lines.append(f"{part}: {len(before[part])} -> {len(after[part])} entries changed")
    return "; ".join(lines)


# -- checking one response -----------------------------------------------------------------


@dataclass
class Failure:
    kind: str
    request: Request
    status: int
    detail: str
    request_id: str = ""


@dataclass
class Findings:
    failures: list[Failure] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)


def _shape_problem(response: Response) -> str | None:
    try:
        body = json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return f"body is not JSON: {response.body[:200]!r}"
    if not isinstance(body, dict):
        return f"body is not a JSON object: {response.body[:200]!r}"
    if 400 <= response.status < 500:
        if not (isinstance(body.get("__type"), str) and "#" in body["__type"]):
            return f"error without a __type: {response.body[:200]!r}"
        if not isinstance(body.get("message"), str):
            return f"error without a message: {response.body[:200]!r}"
        if "x-amzn-query-error" not in response.headers:
            return "error without an x-amzn-query-error header"
    return None


def _action(request: Request) -> str:
    return (request.target or "<none>").removeprefix("AmazonSQS.")[:40]


def _server_frames(log: Path | None, request_id: str) -> str:
    """The exception type and innermost frame the server logged for a request."""
    if log is None or not request_id:
        return "(server log not available)"
    text = log.read_text(errors="replace")
    found = re.search(rf"request {re.escape(request_id)} failed with (\w+)\n((?:  .*\n?)*)", text)
    if found is None:
        return "(no log line for this request)"
    frames = re.findall(r'  File "([^"]+)", line (\d+), in (\S+)', found.group(2))
    if not frames:
        return found.group(1)
    path, line, function = frames[-1]
    repo = str(Path(__file__).resolve().parents[2]) + "/"
    return f"{found.group(1)} at {path.removeprefix(repo)}:{line} in {function}"


def _report(findings: Findings, log: Path | None) -> str:
    groups: dict[tuple[str, str, str], list[Failure]] = {}
    for failure in findings.failures:
        where = (
            _server_frames(log, failure.request_id) if failure.status >= 500 else failure.detail
        )
        groups.setdefault((failure.kind, _action(failure.request), where), []).append(failure)
    lines = [f"{len(findings.failures)} failing requests in {len(groups)} classes "
             f"(statuses seen: {dict(sorted(findings.counts.items()))}):"]
    for (kind, action, where), members in sorted(groups.items()):
        lines.append(f"- [{kind}] {action} x{len(members)}, status {members[0].status}: {where}")
        lines.extend(f"    e.g. {member.request.describe()}" for member in members[:3])
    return "\n".join(lines)


def _dump(findings: Findings) -> None:
    """With SEALQ_FUZZ_DUMP=path, every failing request as a JSON line, to replay it."""
    if not DUMP_PATH:
        return
    with open(DUMP_PATH, "w") as out:
        for failure in findings.failures:
            body = failure.request.body.decode("utf-8", "surrogateescape")
            record = {"kind": failure.kind, "status": failure.status, "detail": failure.detail,
                      "target": failure.request.target, "body": body}
            out.write(json.dumps(record) + "\n")


# -- the test --------------------------------------------------------------------------------


def _server_log(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    logs = sorted(tmp_path_factory.getbasetemp().glob("devserver*/stderr.log"))
    return logs[-1] if logs else None


def _targets(sqs: Any) -> Targets:
    run = uuid.uuid4().hex[:8]
    standard = sqs.create_queue(QueueName=f"fuzz-std-{run}")["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName=f"fuzz-fifo-{run}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    victim = sqs.create_queue(QueueName=f"fuzz-victim-{run}")["QueueUrl"]
    for body in ("one", "two"):
        sqs.send_message(QueueUrl=standard, MessageBody=body)
    sqs.send_message(QueueUrl=fifo, MessageBody="one", MessageGroupId="g")
    got = sqs.receive_message(QueueUrl=standard, VisibilityTimeout=0).get("Messages", [])
    handles = [m["ReceiptHandle"] for m in got] or ["no-handle"]
    account = urlsplit(standard).path.split("/")[1]
    names = [f"fuzz-std-{run}", f"fuzz-fifo-{run}.fifo", f"fuzz-new-{run}",
             f"fuzz-new-{run}.fifo", f"fuzz-victim-{run}"]
    return Targets([standard, fifo], [victim], names, handles, account)


def test_no_request_gets_a_5xx_and_no_refused_request_changes_the_store(
    sealq_server: Server, sqs: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if sealq_server.aws_endpoint is None:
        pytest.skip("the server's AWS endpoint is unknown: the store cannot be compared")
    store = Store(sealq_server.aws_endpoint)
    key = sealq_server.credentials
    credentials = Credentials(key["AWS_ACCESS_KEY_ID"], key["AWS_SECRET_ACCESS_KEY"])
    targets = _targets(sqs)
    findings = Findings()
    state = {"last": store.snapshot()}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not SEED,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.large_base_example],
    )
    @seed(int(SEED or 0))
    @given(request=_requests(targets))
    def one(request: Request) -> None:
        try:
            response = _send(sealq_server.url, request, credentials)
        except (OSError, http.client.HTTPException) as err:
            findings.failures.append(Failure("no response", request, 0, type(err).__name__))
            state["last"] = store.snapshot()
            return
        findings.counts[response.status] = findings.counts.get(response.status, 0) + 1
        after = store.snapshot()
        request_id = response.headers.get("x-amzn-requestid", "")
        if response.status >= 500:
            findings.failures.append(Failure("5xx", request, response.status, "", request_id))
        else:
            problem = _shape_problem(response)
            if problem is not None:
                findings.failures.append(Failure("bad body", request, response.status, problem))
            if 400 <= response.status < 500 and after != state["last"]:
                changed = _difference(state["last"], after)
                findings.failures.append(
                    Failure("refused but changed", request, response.status, changed)
                )
        state["last"] = after

    one()
    print(f"fuzz: statuses {dict(sorted(findings.counts.items()))}")  # shown with -s
    _dump(findings)
    assert not findings.failures, _report(findings, _server_log(tmp_path_factory))
