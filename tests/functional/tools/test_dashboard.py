"""The stack's CloudWatch dashboard charts what the functions emit, as CloudWatch files it.

CloudWatch finds a metric only by its namespace, name and whole dimension set, so a
widget naming a metric the code never sends, or one the code sends with other
dimensions, stays empty without any error. The dashboard is read back out of
infra/merge-template.json (its body is a ``Fn::Sub`` string, filled in here as
CloudFormation would) and every series checked against chalicelib/observability/metrics.py:
the names (``UNITS``), the dimension sets (``DIMENSIONS``, which the recorder enforces
on every sample) and the namespace the template gives the functions. cfn-lint runs on
the packaged template in tests/functional/tools/test_infra.py.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.aws import service_model
from chalicelib.observability import metrics
from chalicelib.storage.ports import TERMINAL_STATUSES
from tests.harness import ROOT
from tools import dashboard

STACK = "orders-prod"
REGION = "eu-west-1"
NAMESPACE = f"sealq/{STACK}"
TEMPLATE = json.loads((ROOT / "infra" / "merge-template.json").read_text())
SEARCH = re.compile(
    r"""SEARCH\('\{"(?P<namespace>[^"]+)"(?P<dimensions>(,\w+)*)\} MetricName="(?P<name>\w+)"',"""
    r""" '(?P<stat>\w+)', (?P<period>\d+)\)""")
# The values sealq records each dimension with.
DIMENSION_VALUES: dict[str, set[str]] = {
    "Tier": {metrics.HANDLER_TIER, metrics.KEY_SERVICE_TIER},
    "Operation": {"GenerateDataKey", "Decrypt"},
    "Purpose": {metrics.FOR_DATA_KEYS, metrics.FOR_SECRETS},
    "Status": set(TERMINAL_STATUSES),
}


API_TYPES = ("REST", "HTTP")
HTTP_API_ID = "a1b2c3d4e5"


def _resolved(value: Any, api_type: str) -> str:
    """One ``Fn::Sub`` variable as CloudFormation resolves it for ``api_type``."""
    if "Fn::If" in value:
        condition, rest, http = value["Fn::If"]
        assert condition == "IsRestApi"
        assert TEMPLATE["Conditions"][condition] == {"Fn::Equals": [{"Ref": "ApiType"}, "REST"]}
        return _resolved(rest if api_type == "REST" else http, api_type)
    if "Ref" in value:
        return {"AWS::StackName": STACK, "HttpAPI": HTTP_API_ID}[value["Ref"]]
    if "Fn::GetAtt" in value:
        resource, attribute = value["Fn::GetAtt"]
        # The alarm named must be one the stack creates for this ApiType.
        condition = TEMPLATE["Resources"][resource].get("Condition")
        assert condition in (None, "IsRestApi" if api_type == "REST" else "IsHttpApi"), resource
        return _alarm_arn(resource)
    assert isinstance(value, str), value
    return value


def _alarm_arn(resource: str) -> str:
    assert TEMPLATE["Resources"][resource]["Type"] == "AWS::CloudWatch::Alarm", resource
    return f"arn:aws:cloudwatch:{REGION}:111122223333:alarm:{STACK}-{resource}"


def substituted(sub: str | list[Any], api_type: str = "REST") -> str:
    """``Fn::Sub`` as CloudFormation fills it in for stack orders-prod of ``api_type``."""
    text, variables = (sub, {}) if isinstance(sub, str) else sub
    values = {"AWS::StackName": STACK, "AWS::Region": REGION}

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return _resolved(variables[name], api_type)
        if name.endswith(".Arn"):
            resource = name.removesuffix(".Arn")
            assert "Condition" not in TEMPLATE["Resources"][resource], resource
            return _alarm_arn(resource)
        return values[name]

    return re.sub(r"\$\{([^}!]+)\}", value, text)


def body(api_type: str = "REST") -> dict[str, Any]:
    properties = TEMPLATE["Resources"]["Dashboard"]["Properties"]
    parsed: dict[str, Any] = json.loads(
        substituted(properties["DashboardBody"]["Fn::Sub"], api_type))
    return parsed


def metric_widgets(api_type: str = "REST") -> list[dict[str, Any]]:
    return [w["properties"] for w in body(api_type)["widgets"] if w["type"] == "metric"]


def series(api_type: str = "REST") -> Iterator[tuple[str, str, str, dict[str, str], str]]:
    """(widget title, namespace, metric name, dimensions, statistic) of every series a
    metric widget charts, from plain metric entries and from SEARCH expressions."""
    for widget in metric_widgets(api_type):
        for entry in widget["metrics"]:
            if isinstance(entry[0], dict):
                for found in SEARCH.finditer(entry[0]["expression"]):
                    names = [d for d in found["dimensions"].split(",") if d]
                    assert int(found["period"]) == widget["period"]
                    yield (widget["title"], found["namespace"], found["name"],
                           dict.fromkeys(names, "*"), found["stat"])
                continue
            options = entry[-1] if isinstance(entry[-1], dict) else {}
            plain = [e for e in entry if not isinstance(e, dict)]
            namespace, name, rest = plain[0], plain[1], plain[2:]
            assert len(rest) % 2 == 0, entry
            yield (widget["title"], namespace, name, dict(zip(rest[::2], rest[1::2], strict=True)),
                   options.get("stat", widget["stat"]))


def test_the_template_holds_the_dashboard_tools_dashboard_builds() -> None:
    assert dashboard.run(["--check"]) == 0


def test_every_metric_the_dashboard_charts_is_one_the_code_emits_with_its_dimensions() -> None:
    charted = 0
    for title, namespace, name, dimensions, stat in series():
        where = f"{title}: {name}"
        if namespace.startswith("AWS/"):
            continue  # AWS's own metrics: the next test
        assert namespace == NAMESPACE, where
        assert name in metrics.UNITS, where
        assert tuple(sorted(dimensions)) == metrics.DIMENSIONS.get(name, ()), where
        for dimension, value in dimensions.items():
            if value == "*":
                continue  # a SEARCH: every value
            allowed = (set(service_model.operations()) if dimension == "Action"
                       else DIMENSION_VALUES[dimension])
            assert value in allowed, where
        # Percentiles need the values themselves: EMF sends those for milliseconds only.
        if stat.startswith("p"):
            assert metrics.UNITS[name] == "Milliseconds", where
        else:
            assert stat == "Sum", where
        charted += 1
    assert charted > 20


@pytest.mark.parametrize("api_type", API_TYPES)
def test_api_gateway_metrics_name_the_stacks_own_api_and_stage(api_type: str) -> None:
    """4xx and 5xx come from API Gateway: it also counts what never reaches the handler
    (a payload over its limit, a proxy answer Lambda refused). A REST API files them as
    4XXError and 5XXError by ApiName, an HTTP API as 4xx and 5xx by ApiId."""
    assert TEMPLATE["Resources"]["RestAPI"]["Properties"]["Name"] == {"Ref": "AWS::StackName"}
    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["api_gateway_stage"]
    assert TEMPLATE["Resources"]["HttpAPIStage"]["Properties"]["StageName"] == stage
    found = {(name, tuple(sorted(dims.items())))
             for _, namespace, name, dims, _ in series(api_type) if namespace.startswith("AWS/")}
    if api_type == "REST":
        expected = {(code, (("ApiName", STACK), ("Stage", stage)))
                    for code in ("4XXError", "5XXError")}
    else:
        expected = {(code, (("ApiId", HTTP_API_ID), ("Stage", stage))) for code in ("4xx", "5xx")}
    assert found == expected
    # The alarm shown is the one that exists for this ApiType, on the same metric.
    (alarms,) = [w["properties"]["alarms"] for w in body(api_type)["widgets"]
                 if w["type"] == "alarm"]
    alarm = "Handler5xxAlarm" if api_type == "REST" else "HttpHandler5xxAlarm"
    assert _alarm_arn(alarm) in alarms
    properties = TEMPLATE["Resources"][alarm]["Properties"]
    assert (properties["MetricName"], properties["Dimensions"][0]["Name"]) in {
        (name, dims[0][0]) for name, dims in found}


def test_the_dashboard_reads_the_namespace_the_template_gives_every_function() -> None:
    for function in ("APIHandler", "KeyService", "Delivery"):
        variables = TEMPLATE["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": dashboard.NAMESPACE}
    assert substituted(dashboard.NAMESPACE) == NAMESPACE


def test_the_dashboard_charts_every_metric_the_code_emits() -> None:
    """A metric added to the code and left off the dashboard fails here."""
    assert {name for _, namespace, name, _, _ in series() if namespace == NAMESPACE} == set(
        metrics.UNITS)


def _recorded_names() -> set[str]:
    """The metric constants some module of chalicelib passes to ``.add(...)``."""
    constants = {value: name for name, value in vars(metrics).items()
                 if name.isupper() and isinstance(value, str) and value in metrics.UNITS}
    found: set[str] = set()
    for path in (ROOT / "chalicelib").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add" and node.args
                    and isinstance(node.args[0], ast.Name)):
                found.add(node.args[0].id)
            elif (isinstance(node, ast.IfExp) and isinstance(node.body, ast.Name)
                  and isinstance(node.orelse, ast.Name)):
                found |= {node.body.id, node.orelse.id}  # add(HITS if hit else MISSES, ...)
    return {value for value, name in constants.items() if name in found}


def test_every_metric_the_code_names_is_recorded_somewhere_in_the_functions() -> None:
    assert _recorded_names() == set(metrics.UNITS)


def test_the_dashboard_is_named_after_the_stack_and_its_url_is_an_output() -> None:
    resource = TEMPLATE["Resources"]["Dashboard"]
    assert resource["Type"] == "AWS::CloudWatch::Dashboard"
    # Dashboards are global to an account: one per stack and region.
    assert substituted(resource["Properties"]["DashboardName"]["Fn::Sub"]) == f"{STACK}-{REGION}"
    url = TEMPLATE["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/")
    assert url.endswith("#dashboards/dashboard/${Dashboard}")


def test_every_widget_fits_the_grid_and_expressions_name_only_series_of_their_widget() -> None:
    cells: set[tuple[int, int]] = set()
    for widget in body()["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        area = {(x, y) for x in range(widget["x"], widget["x"] + widget["width"])
                for y in range(widget["y"], widget["y"] + widget["height"])}
        assert not area & cells, widget
        cells |= area
    for widget in metric_widgets():
        ids = [entry[-1]["id"] for entry in widget["metrics"] if isinstance(entry[-1], dict)
               and "id" in entry[-1]]
        assert len(ids) == len(set(ids)), widget["title"]
        for entry in widget["metrics"]:
            if isinstance(entry[0], dict) and not entry[0]["expression"].startswith("SEARCH"):
                named = set(re.findall(r"[a-z]\w*", entry[0]["expression"]))
                assert named <= set(ids), widget["title"]
    for api_type, other in (("REST", "IsHttpApi"), ("HTTP", "IsRestApi")):
        (alarms,) = [w["properties"]["alarms"] for w in body(api_type)["widgets"]
                     if w["type"] == "alarm"]
        # Every alarm the stack creates for this ApiType, and no other.
        assert sorted(alarms) == sorted(
            _alarm_arn(r) for r, v in TEMPLATE["Resources"].items()
            if v.get("Type") == "AWS::CloudWatch::Alarm" and v.get("Condition") != other)


@pytest.mark.parametrize("name", sorted(metrics.DIMENSIONS))
def test_a_metric_with_dimensions_is_sent_as_emf_under_exactly_that_set(
        name: str, capsys: pytest.CaptureFixture[str]) -> None:
    recorder = metrics.Recorder(publish=True, namespace=NAMESPACE)
    recorder.add(name, 1, **dict.fromkeys(metrics.DIMENSIONS[name], "x"))
    recorder.flush()
    (line,) = [line for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (directive,) = json.loads(line)["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert [sorted(d) for d in directive["Dimensions"]] == [list(metrics.DIMENSIONS[name])]
