"""The stack's CloudWatch dashboard, written into ``infra/merge-template.json``.

    python -m tools.dashboard            rewrite the template's Dashboard and DashboardUrl
    python -m tools.dashboard --check    exit 1 if the template differs from what is built here

A dashboard body is one JSON string inside the template (``Fn::Sub`` fills in the stack
name, region and alarm ARNs), unreadable to review by hand; it is built here from the
metric names of :mod:`chalicelib.observability.metrics`, so it charts what the functions
emit, under their namespace (``sealq/<stack name>``) and exact dimension sets
(tests/functional/tools/test_dashboard.py checks the template's copy against both).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chalicelib.observability import metrics as m

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "merge-template.json"
RESOURCE = "Dashboard"
OUTPUT = "DashboardUrl"
NAMESPACE = "sealq/${AWS::StackName}"
# API Gateway's own metrics differ by the stack's ApiType: a REST API's are 4XXError
# and 5XXError by ApiName (the stack's name), an HTTP API's 4xx and 5xx by ApiId. The
# body names them through Fn::Sub variables chosen by the template's IsRestApi
# condition, as is the ARN of the 5xx alarm that exists for that type (the other one
# is not created, and a plain ${Handler5xxAlarm.Arn} would fail an HTTP stack).
# Chalice's stage is "api" for both.
API_VARIABLES: dict[str, tuple[Any, Any]] = {
    "Api4xx": ("4XXError", "4xx"),
    "Api5xx": ("5XXError", "5xx"),
    "ApiDimension": ("ApiName", "ApiId"),
    "ApiDimensionValue": ({"Ref": "AWS::StackName"}, {"Ref": "HttpAPI"}),
    "ApiAlarmArn": ({"Fn::GetAtt": ["Handler5xxAlarm", "Arn"]},
                    {"Fn::GetAtt": ["HttpHandler5xxAlarm", "Arn"]}),
}
API_DIMENSIONS = ["${ApiDimension}", "${ApiDimensionValue}", "Stage", "api"]
PERIOD = 60
WIDTH = 24  # the dashboard grid's columns
ALARMS = ("${KmsThrottledAlarm.Arn}", "${KeyServiceErrorsAlarm.Arn}", "${ApiAlarmArn}",
          "${FailedDeliveriesAlarm.Arn}")

type Metric = list[Any]


def search(name: str, stat: str, label: str = "") -> Metric:
    """Every series of ``name`` under its whole dimension set (one line per value)."""
    schema = ",".join([f'"{NAMESPACE}"', *m.DIMENSIONS.get(name, ())])
    expression = f"SEARCH('{{{schema}}} MetricName=\"{name}\"', '{stat}', {PERIOD})"
    return [{"expression": expression, "label": label}]


def metric(name: str, *dimensions: str, **options: Any) -> Metric:
    """One series of a sealq metric: ``metric("KeyCacheHits", "Tier", "1", stat="Sum")``."""
    return [NAMESPACE, name, *dimensions, *([options] if options else [])]


def graph(title: str, metrics: list[Metric], *, stat: str = "Sum", unit: str = "",
          **extra: Any) -> dict[str, Any]:
    """A time-series widget; each expression without an id gets one (``e0``, ``e1``...)."""
    for n, entry in enumerate(metrics):
        if isinstance(entry[0], dict):
            entry[0].setdefault("id", f"e{n}")
    properties: dict[str, Any] = {
        "title": title, "view": "timeSeries", "region": "${AWS::Region}", "stat": stat,
        "period": PERIOD, "metrics": metrics, **extra}
    if unit:
        properties["yAxis"] = {"left": {"label": unit, "showUnits": False, "min": 0}}
    return {"type": "metric", "properties": properties}


def _ratio(tier: str, label: str) -> list[Metric]:
    hits, misses = f"h{tier}", f"m{tier}"
    return [
        [{"expression": f"100*{hits}/({hits}+{misses})", "label": label, "id": f"r{tier}"}],
        metric(m.KEY_CACHE_HITS, "Tier", tier, id=hits, visible=False),
        metric(m.KEY_CACHE_MISSES, "Tier", tier, id=misses, visible=False),
    ]


def widgets() -> list[dict[str, Any]]:
    """The dashboard's rows, top to bottom: traffic, latency, keys, messages, triggers."""
    lookups = "(m1+h1)"  # every seal and open needs a data key: KMS per message
    rows: list[list[tuple[int, dict[str, Any]]]] = [
        [(24, {"type": "text", "properties": {"markdown": (
            "## sealq — ${AWS::StackName}\n"
            "The SQS API, the key caches, KMS and the triggers, from the EMF metrics the "
            f"functions emit (namespace `{NAMESPACE}`) and API Gateway's. A saving of KMS "
            "requests is the gap between *per message* and *made*.")}})],
        [(8, graph("Requests by action", [search(m.REQUESTS, "Sum")])),
         (8, graph("4xx and 5xx answers (API Gateway)", [
             ["AWS/ApiGateway", "${Api4xx}", *API_DIMENSIONS, {"label": "4xx"}],
             ["AWS/ApiGateway", "${Api5xx}", *API_DIMENSIONS, {"label": "5xx"}]])),
         (8, graph("Errors by action and code", [search(m.ERRORS, "Sum")]))],
        [(12, graph("Latency p50 by action", [search(m.REQUEST_LATENCY, "p50")], unit="ms")),
         (12, graph("Latency p99 by action", [search(m.REQUEST_LATENCY, "p99")], unit="ms"))],
        [(8, graph("Key-cache hit ratio", [*_ratio(m.HANDLER_TIER, "tier 1 (handler)"),
                                           *_ratio(m.KEY_SERVICE_TIER, "tier 2 (key service)")],
                   unit="%")),
         (8, graph("KMS requests: made, and per message", [
             search(m.KMS_CALLS, "Sum"),
             [{"expression": lookups, "label": "per message (without the caches)", "id": "pm"}],
             metric(m.KEY_CACHE_HITS, "Tier", m.HANDLER_TIER, id="h1", visible=False),
             metric(m.KEY_CACHE_MISSES, "Tier", m.HANDLER_TIER, id="m1", visible=False),
             metric(m.KMS_THROTTLED, label="throttled", color="#d62728")])),
         (8, graph("Key service: calls and round trip", [
             metric(m.KEY_SERVICE_CALLS, label="calls", stat="Sum"),
             metric(m.KEY_SERVICE_LATENCY, label="p50 ms", stat="p50", yAxis="right"),
             metric(m.KEY_SERVICE_LATENCY, label="p99 ms", stat="p99", yAxis="right")]))],
        [(8, graph("Quarantined messages", [metric(m.QUARANTINED_MESSAGES, label="quarantined")])),
         (8, graph("Move tasks", [
             metric(m.REQUESTS, "Action", "StartMessageMoveTask", label="started"),
             metric(m.MOVED_MESSAGES, label="messages moved"),
             search(m.MOVE_TASKS_ENDED, "Sum", "ended")])),
         (8, graph("Sealed bytes", [metric(m.SEALED_BYTES, label="ciphertext bytes")]))],
        [(12, graph("Triggers: messages", [
            metric(m.DELIVERED_MESSAGES, label="delivered"),
            metric(m.FAILED_DELIVERIES, label="failed (kept for redelivery)"),
            metric(m.FILTERED_MESSAGES, label="filtered out"),
            metric(m.REDRIVEN_MESSAGES, label="redriven")])),
         (6, graph("Triggers: function duration", [
             metric(m.FUNCTION_DURATION, label="p50", stat="p50"),
             metric(m.FUNCTION_DURATION, label="p99", stat="p99")], unit="ms")),
         (6, {"type": "alarm", "properties": {
             "title": "Alarms", "alarms": list(ALARMS)}})],
    ]
    placed: list[dict[str, Any]] = []
    y = 0
    for row in rows:
        x = 0
        height = 2 if row[0][1]["type"] == "text" else 6
        for width, widget in row:
            placed.append({**widget, "x": x, "y": y, "width": width, "height": height})
            x += width
        assert x == WIDTH, f"a row of {x} columns"
        y += height
    return placed


def body() -> dict[str, Any]:
    return {"start": "-PT3H", "periodOverride": "inherit", "widgets": widgets()}


def resource() -> dict[str, Any]:
    """Dashboards are global to an account: named after the stack and its region, so one
    stack name in two regions gets two dashboards."""
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": {"Fn::Sub": "${AWS::StackName}-${AWS::Region}"},
            "DashboardBody": {"Fn::Sub": [
                json.dumps(body(), separators=(",", ":"), ensure_ascii=False),
                {name: {"Fn::If": ["IsRestApi", rest, http]}
                 for name, (rest, http) in API_VARIABLES.items()}]},
        },
    }


def output() -> dict[str, Any]:
    return {
        "Description": "The stack's CloudWatch dashboard",
        "Value": {"Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home"
                             "?region=${AWS::Region}#dashboards/dashboard/${Dashboard}"},
    }


def rendered(template: dict[str, Any]) -> str:
    """``template`` with this module's dashboard and output, as the file is written."""
    updated = json.loads(json.dumps(template))
    updated["Resources"][RESOURCE] = resource()
    updated["Outputs"][OUTPUT] = output()
    return json.dumps(updated, indent=2) + "\n"


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.dashboard",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="only check that the template holds this dashboard")
    args = parser.parse_args(argv)
    current = TEMPLATE.read_text()
    wanted = rendered(json.loads(current))
    if args.check:
        if current != wanted:
            print(f"{TEMPLATE} differs: run python -m tools.dashboard", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        TEMPLATE.write_text(wanted)
        print(f"{TEMPLATE}: dashboard written")
    return 0


if __name__ == "__main__":
    sys.exit(run())
