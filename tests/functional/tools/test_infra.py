"""The deployment as CloudFormation will see it: both stages packaged, checked.

``make package`` runs ``chalice package`` with infra/merge-template.json merged in; these
tests run the same packaging once per module for each stage (no AWS credentials, no
region configured) and read the template it produced: names come from the stack, the
pinned cfn-lint reports nothing, and each function's role allows exactly what its code
calls (DESIGN.md: the handler has no KMS permission at all; the key service reaches
only KMS, under sealq's encryption contexts, and its own key records).
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.crypto import sealing
from chalicelib.keyservice import sealed_secrets as envelopes
from chalicelib.keyservice.core import SECRET_CONTEXT_KEY
from tests.harness import ROOT
from tools import package

STAGES = package.STAGES
TEMPLATES: dict[str, dict[str, Any]] = {}
BUILDS: dict[str, Path] = {}


# The prod stage with the HTTP API as its default ApiType (make package API_TYPE=HTTP).
HTTP = "prod-http"


@pytest.fixture(scope="module", autouse=True)
def _packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Both stages packaged and linted, and prod with the HTTP API as its default, once
    for this module; bytecode for one only (the zip is the same for every stage)."""
    for name, stage, api_type in (*((s, s, "REST") for s in STAGES), (HTTP, "prod", "HTTP")):
        out = tmp_path_factory.mktemp(f"package-{name}")
        path = package.package(stage, out, bytecode=name == "dev", run_lint=True,
                               api_type=api_type)
        TEMPLATES[name] = json.loads(path.read_text())
        BUILDS[name] = out
    yield
    TEMPLATES.clear()
    BUILDS.clear()


def resources(stage: str) -> dict[str, Any]:
    found: dict[str, Any] = TEMPLATES[stage]["Resources"]
    return found


def functions(stage: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in resources(stage).items()
            if r["Type"] == "AWS::Serverless::Function"}


def policies(stage: str, role: str) -> list[dict[str, Any]]:
    """The role's own policy, then any AWS::IAM::Policy attached to it (one that must
    name a function of the stack, which the role's own policy cannot: a cycle)."""
    (document,) = [p["PolicyDocument"] for p in resources(stage)[role]["Properties"]["Policies"]]
    attached = [r["Properties"]["PolicyDocument"] for r in resources(stage).values()
                if r["Type"] == "AWS::IAM::Policy"
                and {"Ref": role} in r["Properties"]["Roles"]]
    return [dict(document), *attached]


def statements(stage: str, role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for document in policies(stage, role):
        body = document["Statement"]
        found.extend(body if isinstance(body, list) else [body])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(stage: str, role: str) -> set[str]:
    return {a.lower() for s in statements(stage, role) for a in as_list(s["Action"])}


def granted(stage: str, role: str, service: str) -> list[tuple[set[str], list[Any], Any]]:
    """(actions, resources, condition) of every statement granting ``service`` actions."""
    out = []
    for statement in statements(stage, role):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        mine = {a.lower() for a in as_list(statement["Action"]) if a.startswith(service + ":")}
        if mine:
            out.append((mine, as_list(statement["Resource"]), statement.get("Condition")))
    return out


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere inside a template fragment."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def calls_in(*modules: str, receiver: str) -> set[str]:
    """The boto3 methods chalicelib code calls on ``self.<receiver>`` in these modules."""
    found: set[str] = set()
    for module in modules:
        text = (ROOT / "chalicelib" / module).read_text()
        found |= set(re.findall(rf"self\.{receiver}\.([a-z_]+)\(", text))
    return found


def iam_action(service: str, method: str) -> str:
    """The IAM action a boto3 method is authorized as (batches as their single call)."""
    method = {"send_message_batch": "send_message", "delete_message_batch": "delete_message",
              "delete_objects": "delete_object"}.get(method, method)
    return f"{service}:" + method.replace("_", "")


# -- packaging ------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_packages_without_credentials_and_cfn_lint_reports_nothing(
    stage: str,
) -> None:
    # package.package raised if chalice or the pinned cfn-lint said anything at all.
    assert (BUILDS[stage] / "deployment.zip").stat().st_size > 0
    assert TEMPLATES[stage]["Transform"] == "AWS::Serverless-2016-10-31"


def _project_copy(into: Path) -> Path:
    """What ``chalice package`` reads of the project, copied: app, library, config, infra."""
    import shutil

    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, into / name)
    for folder in ("chalicelib", "infra"):
        shutil.copytree(ROOT / folder, into / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (into / ".chalice").mkdir()
    shutil.copy2(ROOT / ".chalice" / "config.json", into / ".chalice" / "config.json")
    return into


def test_packaging_needs_the_package_index_unless_chalices_cache_holds_the_same_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/deploying.md says what packaging needs: no credentials, but pip's package
    index, unless chalice already built a zip for exactly these sources."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    project = _project_copy(_mkdir(tmp_path / "project"))
    with pytest.raises(package.PackagingError, match="needs the Python package index"):
        package.package("dev", tmp_path / "cold", bytecode=False, run_lint=False,
                        project_dir=project)
    # The same tree, with the zips chalice built for the project (this module packaged
    # it): no index needed.
    cache = project / ".chalice" / "deployments"  # chalice made it, empty
    for built in (ROOT / ".chalice" / "deployments").glob("*.zip"):
        (cache / built.name).symlink_to(built)
    template = package.package("dev", tmp_path / "warm", bytecode=False, run_lint=False,
                               project_dir=project)
    assert json.loads(template.read_text())["Transform"] == "AWS::Serverless-2016-10-31"
    text = " ".join((ROOT / "docs" / "deploying.md").read_text().split())
    assert "package index" in text and ".chalice/deployments" in text


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


# ``aws cloudformation deploy`` passes a template up to this size as its body; a larger
# one must go through S3 (--s3-bucket).
DEPLOY_TEMPLATE_BODY_LIMIT = 51_200
# The longest name an S3 bucket can have: the packaged template names it twice.
ARTIFACTS_BUCKET = "sealq-artifacts-" + "x" * 47


def packaged_template_size(build: Path, workdir: Path) -> int:
    """Bytes of the template ``aws cloudformation package --use-json`` writes for ``build``
    (the AWS CLI itself, uploading to an S3 that is moto)."""
    import os
    import subprocess
    import sys

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(
            Bucket=ARTIFACTS_BUCKET)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL_S3=url,
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        out = workdir / "packaged.json"
        done = subprocess.run(
            [str(Path(sys.executable).parent / "aws"), "cloudformation", "package",
             "--template-file", str(build / "sam.json"), "--s3-bucket", ARTIFACTS_BUCKET,
             "--use-json", "--output-template-file", str(out)],
            env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return out.stat().st_size
    finally:
        server.stop()


def deploy_commands(markdown: str) -> list[str]:
    """Every ``aws cloudformation deploy`` command of a page, continuation lines joined."""
    joined = re.sub(r"\s*\\\n\s*", " ", markdown)
    return [line.strip() for line in joined.splitlines()
            if line.strip().startswith("aws cloudformation deploy")]


def test_the_deploy_commands_are_read_whole_from_the_page() -> None:
    page = "x\naws cloudformation deploy --template-file t \\\n    --s3-bucket B --x y\n"
    assert deploy_commands(page) == ["aws cloudformation deploy --template-file t --s3-bucket B "
                                     "--x y"]


@pytest.mark.parametrize("stage", [*STAGES, HTTP])
def test_a_template_over_the_deploy_body_limit_is_deployed_through_s3_as_the_docs_say(
    stage: str, tmp_path: Path,
) -> None:
    """``aws cloudformation deploy`` refuses a template body over 51,200 bytes unless it
    names ``--s3-bucket``: then every deploy command of docs/deploying.md must."""
    size = packaged_template_size(BUILDS[stage], tmp_path)
    commands = deploy_commands((ROOT / "docs" / "deploying.md").read_text())
    assert commands
    if size > DEPLOY_TEMPLATE_BODY_LIMIT:
        assert all("--s3-bucket" in c for c in commands), (size, commands)


def test_packaging_never_sees_a_credential_and_always_has_a_region() -> None:
    env = package.offline_environment({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_PROFILE": "prod",
                                       "AWS_SECRET_ACCESS_KEY": "x", "PATH": "/bin"})
    assert "AWS_ACCESS_KEY_ID" not in env and "AWS_PROFILE" not in env
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["AWS_DEFAULT_REGION"] and env["AWS_EC2_METADATA_DISABLED"] == "true"


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_runs_python313_traced_with_its_own_retained_log_group(
    stage: str,
) -> None:
    found = functions(stage)
    assert set(found) == {"APIHandler", "KeyService", "Delivery"}
    for props in found.values():
        assert props["Runtime"] == "python3.13"
        assert props["Tracing"] == "Active"
        group = props["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = resources(stage)[group]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert "${AWS::StackName}" in log_group["Properties"]["LogGroupName"]["Fn::Sub"]
    assert TEMPLATES[stage]["Parameters"]["LogRetentionDays"]["Default"] > 0


@pytest.mark.parametrize("stage", STAGES)
def test_every_functions_handler_exists_in_app_py_and_in_the_zip(stage: str) -> None:
    app = importlib.import_module("app")
    with zipfile.ZipFile(BUILDS["dev"] / "deployment.zip") as zipped:
        names = set(zipped.namelist())
    for props in functions(stage).values():
        module, attribute = props["Handler"].rsplit(".", 1)
        assert module == "app" and callable(getattr(app, attribute))
        assert props["CodeUri"] == "./deployment.zip"
    assert {"app.py", "__pycache__/app.cpython-313.pyc",
            "chalicelib/keyservice/__pycache__/process.cpython-313.pyc"} <= names


def test_the_package_ships_bytecode_for_every_module() -> None:
    with zipfile.ZipFile(BUILDS["dev"] / "deployment.zip") as zipped:
        names = set(zipped.namelist())
    sources = {n for n in names if n.endswith(".py") and n.startswith(("chalicelib/", "boto"))}
    for source in sources:
        folder, _, file = source.rpartition("/")
        assert f"{folder}/__pycache__/{file[:-3]}.cpython-313.pyc" in names, source


def test_the_key_service_cold_start_loads_none_of_the_handlers_tree(tmp_path: Path) -> None:
    from bench import bench_coldstart

    task = bench_coldstart.unpack(BUILDS["dev"] / "deployment.zip", tmp_path / "task",
                                  bytecode=True)
    timings = bench_coldstart.measure(task, repeats=1)
    handler_only = {"aws_encryption_sdk", "chalicelib.protocol", "chalicelib.auth",
                    "chalicelib.storage.backing", "chalicelib.crypto.sealing",
                    "chalicelib.handler.container"}
    assert handler_only <= timings["handler"].modules
    assert not handler_only & timings["key service"].modules
    assert "chalicelib.keyservice.core" in timings["key service"].modules
    assert "chalicelib" not in timings["import boto3"].modules
    assert "loads the encryption SDK: False" in bench_coldstart.format_table(timings, None)


def test_the_package_holds_only_the_app_and_its_libraries(tmp_path: Path) -> None:
    """No test, tool, benchmark or in-memory double is deployed, and none loads at either
    function's cold start (only chalicelib/ and app.py are sealq's own code in the zip)."""
    from bench import bench_coldstart

    with zipfile.ZipFile(BUILDS["dev"] / "deployment.zip") as zipped:
        names = set(zipped.namelist())
    top = {n.split("/", 1)[0] for n in names}
    assert not top & {"tests", "tools", "bench", "infra", "docs", ".chalice"}
    assert not any(n.endswith(("memory.py", "conftest.py", "harness.py")) for n in names)
    task = bench_coldstart.unpack(BUILDS["dev"] / "deployment.zip", tmp_path / "task",
                                  bytecode=True)
    timings = bench_coldstart.measure(task, repeats=1)
    for function in ("handler", "key service"):
        loaded = timings[function].modules
        assert not {m for m in loaded if m.split(".")[0] in ("tests", "tools", "bench")}
        assert not {m for m in loaded if m.endswith(".memory")}


# -- names from the stack -----------------------------------------------------------------

PHYSICAL_NAMES = {"TableName", "BucketName", "AliasName", "LogGroupName", "FunctionName",
                  "RoleName", "Name", "AlarmName", "TopicName", "QueueName"}


@pytest.mark.parametrize("stage", STAGES)
def test_no_resource_has_a_fixed_physical_name_so_two_stacks_coexist(stage: str) -> None:
    for logical, resource in resources(stage).items():
        for key, value in resource.get("Properties", {}).items():
            if key in PHYSICAL_NAMES:
                assert not isinstance(value, str), (logical, key, value)
                refers = isinstance(value, dict) and value.get("Ref") in resources(stage)
                assert refers or "AWS::StackName" in json.dumps(value), (logical, key)
    # Nothing names a partition, region or account literally.
    for text in strings(TEMPLATES[stage]):
        assert "arn:aws:" not in text and "sealq-queues" not in text, text


@pytest.mark.parametrize("stage", STAGES)
def test_every_retained_resource_is_retained_on_replacement_too(stage: str) -> None:
    retained = {name for name, r in resources(stage).items()
                if r.get("DeletionPolicy") == "Retain"}
    assert retained == {"QueuesTable", "KeysTable", "AccountsTable", "PayloadBucket",
                        "DefaultKey"}
    for name in retained:
        resource = resources(stage)[name]
        assert resource["UpdateReplacePolicy"] == resource["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("stage", STAGES)
def test_the_log_groups_go_with_the_stack_by_an_explicit_policy(stage: str) -> None:
    """Decided, not defaulted (cfn-lint I3011): the logs hold no message and no key, their
    retention bounds them anyway, and a retained group keeps its name, so a stack of the
    same name could not be created again (docs/deploying.md, tearing down)."""
    groups = {name: r for name, r in resources(stage).items()
              if r["Type"] == "AWS::Logs::LogGroup"}
    assert set(groups) == {"APIHandlerLogGroup", "KeyServiceLogGroup", "DeliveryLogGroup"}
    for group in groups.values():
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Delete"


def test_packaging_lints_with_cfn_lints_informational_rules_too(tmp_path: Path) -> None:
    """A stateful resource without a decided DeletionPolicy fails packaging (I3011)."""
    template = tmp_path / "undecided.json"
    template.write_text(json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Logs": {"Type": "AWS::Logs::LogGroup",
                               "Properties": {"RetentionInDays": 30}}},
    }))
    with pytest.raises(package.PackagingError, match="I3011"):
        package.lint(template)


@pytest.mark.parametrize("stage", STAGES)
def test_functions_get_the_stacks_names_by_ref_and_nothing_else(stage: str) -> None:
    handler = functions(stage)["APIHandler"]["Environment"]["Variables"]
    service = functions(stage)["KeyService"]["Environment"]["Variables"]
    assert handler["SEALQ_QUEUES_TABLE"] == {"Ref": "QueuesTable"}
    assert handler["SEALQ_ACCOUNTS_TABLE"] == {"Ref": "AccountsTable"}
    assert handler["SEALQ_PAYLOAD_BUCKET"] == {"Ref": "PayloadBucket"}
    assert handler["SEALQ_DEFAULT_KMS_KEY"] == {"Ref": "DefaultKeyAlias"}
    assert handler["SEALQ_KEY_SERVICE_FUNCTION"] == {"Ref": "KeyService"}
    assert "AWS::StackId" in json.dumps(handler["SEALQ_BACKING_QUEUE_PREFIX"])
    assert service["SEALQ_KEYS_TABLE"] == {"Ref": "KeysTable"}
    assert service["SEALQ_DEFAULT_KMS_KEY"] == {"Ref": "DefaultKeyAlias"}
    # Each function is told only the names it uses.
    assert "SEALQ_KEYS_TABLE" not in handler
    assert not {"SEALQ_QUEUES_TABLE", "SEALQ_ACCOUNTS_TABLE", "SEALQ_PAYLOAD_BUCKET",
                "SEALQ_KEY_SERVICE_FUNCTION"} & set(service)
    alias = resources(stage)["DefaultKeyAlias"]["Properties"]["AliasName"]
    assert alias == {"Fn::Sub": "alias/sealq-${AWS::StackName}"}
    delivery = functions(stage)["Delivery"]["Environment"]["Variables"]
    assert delivery["SEALQ_QUEUES_TABLE"] == {"Ref": "QueuesTable"}
    assert delivery["SEALQ_PAYLOAD_BUCKET"] == {"Ref": "PayloadBucket"}
    assert delivery["SEALQ_KEY_SERVICE_FUNCTION"] == {"Ref": "KeyService"}
    assert delivery["SEALQ_BACKING_QUEUE_PREFIX"] == handler["SEALQ_BACKING_QUEUE_PREFIX"]
    assert not {"SEALQ_KEYS_TABLE", "SEALQ_ACCOUNTS_TABLE"} & set(delivery)
    # The handler deletes a deleted queue's mapping: it knows the delivery function.
    assert handler["SEALQ_DELIVERY_FUNCTION"] == {"Fn::GetAtt": ["Delivery", "Arn"]}


def test_the_tables_match_what_local_provisioning_creates() -> None:
    from tools.local import provision
    for logical, schema in (
        ("QueuesTable", provision.QUEUES_TABLE_SCHEMA),
        ("KeysTable", provision.KEYS_TABLE_SCHEMA),
        ("AccountsTable", provision.ACCOUNTS_TABLE_SCHEMA),
    ):
        props = resources("dev")[logical]["Properties"]
        for field, value in schema.items():
            assert props[field] == value, (logical, field)


def test_the_payload_bucket_is_private_and_expires_orphans_everywhere(stack: None) -> None:
    import boto3

    from chalicelib import settings
    from tools.local import provision
    bucket = resources("dev")["PayloadBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    deployed = {(r["Prefix"], r["ExpirationInDays"])
                for r in bucket["LifecycleConfiguration"]["Rules"]}
    local = {(r["Filter"]["Prefix"], r["Expiration"]["Days"])
             for r in provision.PAYLOAD_LIFECYCLE["Rules"]}
    assert deployed == local == {("payloads/", 15), ("quarantine/", 15)}
    s3 = boto3.client("s3", region_name="us-east-1")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=settings.get().payload_bucket)["Rules"]
    assert {(r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules} == local


# -- least privilege ------------------------------------------------------------------------

HANDLER_ROLE = "ApiHandlerRole"
KEY_SERVICE_ROLE = "KeyServiceRole"
DELIVERY_ROLE = "DeliveryRole"
# Tenants' functions are not the stack's: the delivery role may invoke any function, and
# a function in another account only where its own policy names the role (the second
# lock; the first is the admin plane, where only the operator attaches a function).
TENANT_FUNCTIONS = {"Fn::Sub": "arn:${AWS::Partition}:lambda:*:*:function:*"}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("role", [HANDLER_ROLE, KEY_SERVICE_ROLE, DELIVERY_ROLE])
def test_no_policy_grants_a_wildcard_action_or_a_wildcard_resource_beyond_xray(
    stage: str, role: str,
) -> None:
    for statement in statements(stage, role):
        for action in as_list(statement["Action"]):
            assert "*" not in action, action
        if statement["Resource"] == "*":
            assert {a.split(":")[0] for a in as_list(statement["Action"])} == {"xray"}
        if statement["Resource"] == TENANT_FUNCTIONS:
            assert (role, statement["Action"]) == (DELIVERY_ROLE, ["lambda:InvokeFunction"])


@pytest.mark.parametrize("stage", STAGES)
def test_the_message_handler_reaches_only_its_own_stores_and_never_kms(stage: str) -> None:
    services = {a.split(":", 1)[0] for a in actions(stage, HANDLER_ROLE)}
    assert services == {"logs", "xray", "dynamodb", "sqs", "s3", "lambda"}
    for acts, res, _ in granted(stage, HANDLER_ROLE, "dynamodb"):
        assert res in ([{"Fn::GetAtt": ["QueuesTable", "Arn"]}],
                       [{"Fn::GetAtt": ["AccountsTable", "Arn"]}])
        if res == [{"Fn::GetAtt": ["AccountsTable", "Arn"]}]:
            assert acts == {"dynamodb:getitem"}  # the handler only reads access keys
    # its own key service, and itself: a message move task's worker is an asynchronous
    # invoke of the handler's own function
    lambda_grants = sorted(json.dumps(g[:2], default=sorted) for g in
                           granted(stage, HANDLER_ROLE, "lambda")
                           if g[0] != {"lambda:deleteeventsourcemapping"})
    assert lambda_grants == sorted(json.dumps(({"lambda:invokefunction"}, [
        {"Fn::GetAtt": [function, "Arn"]}]), default=sorted)
        for function in ("APIHandler", "KeyService"))
    for acts, res, _ in granted(stage, HANDLER_ROLE, "s3"):
        (resource,) = res
        if acts == {"s3:listbucket"}:  # the bucket itself, for S3's 404 (see below)
            assert resource == {"Fn::GetAtt": ["PayloadBucket", "Arn"]}
            continue
        assert resource["Fn::Sub"] in ("${PayloadBucket.Arn}/payloads/*",
                                       "${PayloadBucket.Arn}/quarantine/*")
    (logs,) = granted(stage, HANDLER_ROLE, "logs")
    assert logs[:2] == ({"logs:createlogstream", "logs:putlogevents"},
                        [{"Fn::GetAtt": ["APIHandlerLogGroup", "Arn"]}])


@pytest.mark.parametrize("stage", STAGES)
def test_the_handler_may_list_only_the_payload_prefix_so_s3_answers_a_missing_payload_404(
    stage: str,
) -> None:
    """Without s3:ListBucket S3 answers GetObject on a missing key 403 AccessDenied, not
    404 (moto always says 404). The grant is for that answer only: the code lists
    nothing, and the condition holds it to the prefix the payloads are written under
    (S3 checks it with the object's key as s3:prefix)."""
    from chalicelib.storage import payloads

    listing = [g for g in granted(stage, HANDLER_ROLE, "s3") if "s3:listbucket" in g[0]]
    (acts, res, condition), = listing
    assert acts == {"s3:listbucket"}
    assert res == [{"Fn::GetAtt": ["PayloadBucket", "Arn"]}]
    assert condition == {"StringLike": {"s3:prefix": [payloads.KEY_PREFIX + "*"]}}
    assert not {m for m in calls_in("storage/payloads.py", receiver="_s3")
                if m.startswith("list")}


@pytest.mark.parametrize("stage", STAGES)
def test_the_handler_reaches_only_its_stacks_backing_queues(stage: str) -> None:
    (sqs,) = granted(stage, HANDLER_ROLE, "sqs")
    (resource,) = sqs[1]
    pattern, variables = resource["Fn::Sub"]
    prefix, prefix_variables = functions(stage)["APIHandler"]["Environment"]["Variables"][
        "SEALQ_BACKING_QUEUE_PREFIX"]["Fn::Sub"]
    assert pattern == "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + prefix + "*"
    assert variables == prefix_variables


def test_the_handler_is_granted_exactly_the_store_calls_its_code_makes() -> None:
    sqs = calls_in("storage/backing.py", receiver="_sqs") | calls_in(
        "storage/backing.py", receiver="_poll")
    (granted_sqs,) = granted("dev", HANDLER_ROLE, "sqs")
    assert granted_sqs[0] == {iam_action("sqs", m) for m in sqs}
    queue_table = calls_in("storage/queue_table.py", receiver="_ddb")
    on_queues = {a for acts, res, _ in granted("dev", HANDLER_ROLE, "dynamodb")
                 if res == [{"Fn::GetAtt": ["QueuesTable", "Arn"]}] for a in acts}
    assert on_queues == {iam_action("dynamodb", m) for m in queue_table}
    payloads = calls_in("storage/payloads.py", receiver="_s3")
    on_payloads = {a for acts, res, _ in granted("dev", HANDLER_ROLE, "s3")
                   if "payloads/" in json.dumps(res) for a in acts}
    assert on_payloads == {iam_action("s3", m) for m in payloads}


@pytest.mark.parametrize("stage", STAGES)
def test_the_key_service_reaches_only_kms_and_its_key_records(stage: str) -> None:
    services = {a.split(":", 1)[0] for a in actions(stage, KEY_SERVICE_ROLE)}
    assert services == {"logs", "xray", "kms", "dynamodb"}
    (records,) = granted(stage, KEY_SERVICE_ROLE, "dynamodb")
    assert records[1] == [{"Fn::GetAtt": ["KeysTable", "Arn"]}]
    code = calls_in("storage/key_records.py", receiver="_ddb")
    assert records[0] == {iam_action("dynamodb", m) for m in code}
    (logs,) = granted(stage, KEY_SERVICE_ROLE, "logs")
    assert logs[1] == [{"Fn::GetAtt": ["KeyServiceLogGroup", "Arn"]}]


@pytest.mark.parametrize("stage", STAGES)
def test_the_key_service_uses_kms_only_under_sealqs_encryption_contexts(stage: str) -> None:
    kms = granted(stage, KEY_SERVICE_ROLE, "kms")
    code = calls_in("keyservice/kms.py", receiver="_client")
    allowed_keys: set[str] = set()
    for acts, res, condition in kms:
        assert acts == {iam_action("kms", m) for m in code} == {"kms:generatedatakey",
                                                                "kms:decrypt"}
        keys = condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]
        allowed_keys |= set(keys)
        # ForAllValues holds for a request without any context: Null refuses that.
        assert condition["Null"] and set(condition["Null"].values()) == {"false"}
        assert res != ["*"]
    message_keys = set(sealing.encryption_context("arn", "000000000000", "id"))
    secret_keys = {SECRET_CONTEXT_KEY, envelopes.ACCESS_KEY_CONTEXT}
    assert allowed_keys == message_keys | secret_keys
    by_sid = {s["Sid"]: s for s in statements(stage, KEY_SERVICE_ROLE)}
    # Secrets only under the stack's own default key; messages under any key in the region
    # (queues may name the tenant's own CMK), always with the account in the context.
    assert by_sid["DeploymentSecrets"]["Resource"] == {"Fn::GetAtt": ["DefaultKey", "Arn"]}
    assert by_sid["MessageDataKeys"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:*:key/*"}
    assert by_sid["MessageDataKeys"]["Condition"]["Null"][
        "kms:EncryptionContext:sealq:account"] == "false"


@pytest.mark.parametrize("stage", STAGES)
def test_the_delivery_function_reaches_only_its_stores_and_never_kms(stage: str) -> None:
    services = {a.split(":", 1)[0] for a in actions(stage, DELIVERY_ROLE)}
    assert services == {"logs", "xray", "dynamodb", "sqs", "s3", "lambda"}
    assert not {a for a in actions(stage, DELIVERY_ROLE) if a.startswith("kms:")}
    (records,) = granted(stage, DELIVERY_ROLE, "dynamodb")
    assert records[:2] == ({"dynamodb:getitem"}, [{"Fn::GetAtt": ["QueuesTable", "Arn"]}])
    # What the event source mapping polls with (the function's role), and no more.
    (sqs,) = granted(stage, DELIVERY_ROLE, "sqs")
    assert sqs[0] == {"sqs:receivemessage", "sqs:deletemessage", "sqs:getqueueattributes"}
    assert "sealq-${StackTag}-*" in sqs[1][0]["Fn::Sub"][0]
    s3 = {(frozenset(a), json.dumps(r)) for a, r, _ in granted(stage, DELIVERY_ROLE, "s3")}
    assert s3 == {(frozenset({"s3:getobject"}), '[{"Fn::Sub": "${PayloadBucket.Arn}/payloads/*"}]'),
                  (frozenset({"s3:putobject"}),
                   '[{"Fn::Sub": "${PayloadBucket.Arn}/quarantine/*"}]')}
    invokes = sorted(json.dumps(r) for a, r, _ in granted(stage, DELIVERY_ROLE, "lambda"))
    assert invokes == sorted([json.dumps([{"Fn::GetAtt": ["KeyService", "Arn"]}]),
                              json.dumps([TENANT_FUNCTIONS])])


@pytest.mark.parametrize("stage", STAGES)
def test_the_handler_may_delete_only_the_delivery_functions_mappings(stage: str) -> None:
    (grant,) = [g for g in granted(stage, HANDLER_ROLE, "lambda")
                if g[0] == {"lambda:deleteeventsourcemapping"}]
    assert grant[2] == {"StringEquals": {"lambda:FunctionArn": {
        "Fn::GetAtt": ["Delivery", "Arn"]}}}
    assert "event-source-mapping:*" in grant[1][0]["Fn::Sub"]


# -- outputs, alarms, stages --------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_outputs_name_what_the_operator_and_the_admin_command_need(stage: str) -> None:
    outputs = TEMPLATES[stage]["Outputs"]
    assert {"EndpointURL", "KeyServiceRoleArn", "KeyServiceFunction", "QueuesTable",
            "KeysTable", "AccountsTable", "PayloadBucket", "BackingQueuePrefix",
            "DefaultKmsKey", "DeliveryFunction", "DeliveryRoleArn"} <= set(outputs)
    assert outputs["KeyServiceRoleArn"]["Value"] == {"Fn::GetAtt": [KEY_SERVICE_ROLE, "Arn"]}
    # One EndpointURL whichever API serves: the stage URL of either.
    url, names = outputs["EndpointURL"]["Value"]["Fn::Sub"]
    assert url == "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api/"
    assert names == {"Api": {"Fn::If": ["IsRestApi", {"Ref": "RestAPI"}, {"Ref": "HttpAPI"}]}}
    assert outputs["RestAPIId"]["Condition"] == "IsRestApi"
    assert outputs["HttpAPIId"]["Condition"] == "IsHttpApi"


@pytest.mark.parametrize("stage", STAGES)
def test_alarms_watch_kms_throttling_key_service_errors_and_handler_5xx(stage: str) -> None:
    stack_namespace = {"Fn::Sub": "sealq/${AWS::StackName}"}
    alarms = {(json.dumps(p["Namespace"]), p["MetricName"]): p
              for r in resources(stage).values()
              if r["Type"] == "AWS::CloudWatch::Alarm" for p in [r["Properties"]]}
    kms_throttled = (json.dumps(stack_namespace), "KmsThrottled")
    lambda_errors, api_5xx = ('"AWS/Lambda"', "Errors"), ('"AWS/ApiGateway"', "5XXError")
    failed_deliveries = (json.dumps(stack_namespace), "FailedDeliveries")
    http_5xx = ('"AWS/ApiGateway"', "5xx")  # the HTTP API's metric, by ApiId
    assert set(alarms) == {kms_throttled, lambda_errors, api_5xx, http_5xx, failed_deliveries}
    assert "Dimensions" not in alarms[failed_deliveries]
    # sealq's EMF lines carry no dimension on KmsThrottled; the stack's namespace is its own.
    assert "Dimensions" not in alarms[kms_throttled]
    assert alarms[lambda_errors]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "KeyService"}}]
    api_name = {d["Name"]: d["Value"] for d in alarms[api_5xx]["Dimensions"]}
    assert api_name == {"ApiName": {"Ref": "AWS::StackName"}, "Stage": "api"}
    http_api = {d["Name"]: d["Value"] for d in alarms[http_5xx]["Dimensions"]}
    assert http_api == {"ApiId": {"Ref": "HttpAPI"}, "Stage": "api"}
    by_metric = {r["Properties"]["MetricName"]: r for r in resources(stage).values()
                 if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert by_metric["5XXError"]["Condition"] == "IsRestApi"
    assert by_metric["5xx"]["Condition"] == "IsHttpApi"
    assert resources(stage)["RestAPI"]["Properties"]["Name"] == {"Ref": "AWS::StackName"}
    for env in (f["Environment"]["Variables"] for f in functions(stage).values()):
        assert env["POWERTOOLS_SERVICE_NAME"] == "sealq"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == stack_namespace


def test_stages_differ_only_in_their_configuration() -> None:
    dev, prod = functions("dev"), functions("prod")
    assert "ReservedConcurrentExecutions" not in dev["KeyService"]
    assert prod["KeyService"]["ReservedConcurrentExecutions"] > 0
    assert prod["APIHandler"]["MemorySize"] >= dev["APIHandler"]["MemorySize"]
    for stage, level in (("dev", "DEBUG"), ("prod", "INFO")):
        for props in functions(stage).values():
            env = props["Environment"]["Variables"]
            assert env["SEALQ_LOG_LEVEL"] == env["POWERTOOLS_LOG_LEVEL"] == level
            assert "SEALQ_PUBLIC_URL" in env
    for stage in STAGES:
        api = resources(stage)["RestAPI"]["Properties"]
        assert api["EndpointConfiguration"] == "REGIONAL"
        assert api["TracingEnabled"] is True
        assert api["StageName"] == "api"


# -- the API type: REST (the default) or HTTP ---------------------------------------------


def test_the_http_variant_packages_cfn_lint_clean_with_http_as_its_default() -> None:
    # package.package raised if cfn-lint said anything about either default.
    assert TEMPLATES["prod"]["Parameters"]["ApiType"]["Default"] == "REST"
    assert TEMPLATES[HTTP]["Parameters"]["ApiType"]["Default"] == "HTTP"
    assert TEMPLATES[HTTP]["Parameters"]["ApiType"]["AllowedValues"] == ["REST", "HTTP"]
    with pytest.raises(package.PackagingError, match="unknown API type"):
        package.set_api_type(BUILDS[HTTP] / "sam.json", "SOAP")


def _references(value: Any) -> set[str]:
    """Logical ids a template fragment names (Ref, GetAtt, ${...} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else str(item).split(".")[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(item, list):
                    found |= _references(item[1])
            else:
                found |= _references(item)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


# Fn::If's second branch holds where its condition does not: of the two API types, the other.
_OTHERWISE = {"IsRestApi": "IsHttpApi", "IsHttpApi": "IsRestApi"}


def _guarded_references(value: Any, guard: str | None = None) -> set[tuple[str, str | None]]:
    """(logical id, the ApiType condition it is named under) of a template fragment: a
    name inside ``Fn::If [IsRestApi, a, b]`` counts as under IsRestApi in ``a`` and under
    IsHttpApi in ``b``; anywhere else, under ``guard``."""
    if isinstance(value, dict) and "Fn::If" in value:
        condition, then, otherwise = value["Fn::If"]
        return (_guarded_references(then, condition)
                | _guarded_references(otherwise, _OTHERWISE.get(condition, guard)))
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), list):
        text, variables = value["Fn::Sub"]
        named = {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)} - set(variables)
        return {(n, guard) for n in named} | _guarded_references(variables, guard)
    if isinstance(value, dict):
        if set(value) & {"Ref", "Fn::GetAtt", "Fn::Sub"}:
            return {(n, guard) for n in _references(value)}
        return {found for item in value.values() for found in _guarded_references(item, guard)}
    if isinstance(value, list):
        return {found for item in value for found in _guarded_references(item, guard)}
    return set()


@pytest.mark.parametrize("stage", [*STAGES, HTTP])
def test_a_resource_made_for_one_api_type_is_named_only_under_that_type(stage: str) -> None:
    """CloudFormation refuses a template naming a resource that may not exist: a name of
    an API-type resource needs that type's condition, on the resource naming it or on the
    Fn::If branch it sits in (the dashboard's 4xx/5xx and 5xx alarm are chosen so)."""
    found = resources(stage)
    typed = {name: r["Condition"] for name, r in found.items()
             if r.get("Condition") in _OTHERWISE}
    assert {"RestAPI", "Handler5xxAlarm", "HttpAPI", "HttpHandler5xxAlarm"} <= set(typed)
    for name, resource in found.items():
        for named, guard in _guarded_references(resource.get("Properties", {})):
            if named in typed:
                assert typed[named] in (resource.get("Condition"), guard), (name, named)
    for key, output in TEMPLATES[stage]["Outputs"].items():
        for named, guard in _guarded_references(output["Value"]):
            if named in typed:
                assert typed[named] in (output.get("Condition"), guard), (key, named)


@pytest.mark.parametrize("stage", [*STAGES, HTTP])
def test_each_api_and_what_depends_on_it_exist_only_for_its_api_type(stage: str) -> None:
    """REST and HTTP never both: whatever names one API (its permission, alarm, routes,
    stage, output) is under that API's condition, so either stack deploys whole."""
    found = resources(stage)
    http = {name for name, r in found.items() if r["Type"].startswith("AWS::ApiGatewayV2::")}
    assert http == {"HttpAPI", "HttpAPIIntegration", "HttpAPIRootGet", "HttpAPIRootPost",
                    "HttpAPIQueueGet", "HttpAPIQueuePost", "HttpAPIStage"}
    for name in http:
        assert found[name]["Condition"] == "IsHttpApi", name
    assert found["RestAPI"]["Condition"] == "IsRestApi"


def test_the_http_api_proxies_the_handlers_own_routes_with_payload_format_1_0() -> None:
    import importlib

    from chalicelib import timeouts

    found = resources(HTTP)
    api = found["HttpAPI"]["Properties"]
    assert api["ProtocolType"] == "HTTP" and api["Name"] == {"Ref": "AWS::StackName"}
    integration = found["HttpAPIIntegration"]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "1.0"  # the REST API's event shape
    assert integration["IntegrationUri"] == {"Fn::GetAtt": ["APIHandler", "Arn"]}
    # HTTP APIs allow up to 30 s: the handler's chain of timeouts is built for 29.
    assert integration["TimeoutInMillis"] == timeouts.API_GATEWAY_SECONDS * 1000
    app = importlib.import_module("app").app
    chalice_routes = {f"{method} {path}" for path, methods in app.routes.items()
                      for method in methods}
    routes = {r["Properties"]["RouteKey"] for r in found.values()
              if r["Type"] == "AWS::ApiGatewayV2::Route"}
    assert routes == chalice_routes == {"GET /", "POST /", "GET /{account}/{queue}",
                                        "POST /{account}/{queue}"}
    for route in (r for r in found.values() if r["Type"] == "AWS::ApiGatewayV2::Route"):
        assert route["Properties"]["Target"] == {"Fn::Sub": "integrations/${HttpAPIIntegration}"}
    stage = found["HttpAPIStage"]["Properties"]
    assert (stage["StageName"], stage["AutoDeploy"]) == ("api", True)  # the REST URL's shape
    permission = found["HttpAPIInvokePermission"]["Properties"]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["FunctionName"] == {"Ref": "APIHandler"}
    assert permission["SourceArn"] == {"Fn::Sub": "arn:${AWS::Partition}:execute-api:"
                                       "${AWS::Region}:${AWS::AccountId}:${HttpAPI}/*"}
