"""The deployment's least privilege: the message handler can never reach KMS.

DESIGN.md: the handler has no KMS permission at all; only the key service calls
KMS, and it touches nothing but KMS, its own key records and its logs. These
tests read the policy files through chalice's own config resolution, so they
check the policies that ``chalice deploy`` / ``chalice package`` would attach.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from chalice.config import Config

from chalicelib import settings

REPO_ROOT = Path(__file__).resolve().parent.parent
STAGE = "dev"


def _config(function_name: str = "api_handler") -> Config:
    on_disk = json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())
    base = Config(
        chalice_stage=STAGE,
        config_from_disk=on_disk,
        default_params={"project_dir": str(REPO_ROOT)},
    )
    return base.scope(STAGE, function_name)


def _policy(function_name: str) -> dict[str, Any]:
    config = _config(function_name)
    assert config.iam_policy_file, f"{function_name} has no iam_policy_file"
    # chalice resolves policy files relative to .chalice/ (deploy/appgraph.py).
    path = REPO_ROOT / ".chalice" / config.iam_policy_file
    return json.loads(path.read_text())


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _allowed(policy: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(action, resources) for every allowed action, lower-cased action."""
    out = []
    for statement in _statements(policy):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in _as_list(statement["Action"]):
            out.append((action.lower(), _as_list(statement["Resource"])))
    return out


def _actions(policy: dict[str, Any]) -> set[str]:
    return {action for action, _ in _allowed(policy)}


@pytest.mark.parametrize("function_name", ["api_handler", "key_service"])
def test_each_function_has_its_own_hand_written_policy(function_name: str) -> None:
    config = _config(function_name)
    assert config.app_name == "sealq"
    assert config.autogen_policy is False
    policy = _policy(function_name)
    assert policy["Version"] == "2012-10-17"
    assert _policy("api_handler") != _policy("key_service")


@pytest.mark.parametrize("function_name", ["api_handler", "key_service"])
def test_no_policy_grants_a_wildcard_action(function_name: str) -> None:
    for action in _actions(_policy(function_name)):
        assert "*" not in action, action


def test_the_message_handler_has_no_kms_permission_at_all() -> None:
    actions = _actions(_policy("api_handler"))
    assert not [action for action in actions if action.startswith("kms:")]


def test_the_key_service_cannot_touch_messages_or_invoke_anything() -> None:
    actions = _actions(_policy("key_service"))
    services = {action.split(":", 1)[0] for action in actions}
    assert services == {"kms", "dynamodb", "logs"}


def test_the_key_service_gets_exactly_the_kms_calls_it_needs() -> None:
    actions = _actions(_policy("key_service"))
    kms = {action for action in actions if action.startswith("kms:")}
    assert kms == {"kms:generatedatakey", "kms:decrypt", "kms:describekey"}


def test_each_function_reaches_only_its_own_tables() -> None:
    conf = settings.from_environ({})
    for function_name, tables in [
        ("api_handler", {conf.queues_table, conf.accounts_table}),
        ("key_service", {conf.keys_table}),
    ]:
        for action, resources in _allowed(_policy(function_name)):
            if action.startswith("dynamodb:"):
                for resource in resources:
                    assert resource.split(":table/", 1)[1].split("/")[0] in tables, resource


def test_the_handler_only_reads_access_keys() -> None:
    conf = settings.from_environ({})
    on_accounts = {action for action, resources in _allowed(_policy("api_handler"))
                   for resource in resources if resource.endswith(f":table/{conf.accounts_table}")}
    assert on_accounts == {"dynamodb:getitem"}


def test_the_handler_touches_only_backing_queues_the_bucket_and_the_key_service() -> None:
    conf = settings.from_environ({})
    for action, resources in _allowed(_policy("api_handler")):
        service = action.split(":", 1)[0]
        for resource in resources:
            if service == "sqs":
                assert resource.endswith(":sealq-*"), resource
            elif service == "s3":
                assert resource == f"arn:aws:s3:::{conf.payload_bucket}/*"
            elif service == "lambda":
                assert action == "lambda:invokefunction"
                assert "key_service" in resource or "KeyService" in resource


@pytest.mark.parametrize("function_name", ["api_handler", "key_service"])
def test_both_functions_can_write_their_logs(function_name: str) -> None:
    actions = _actions(_policy(function_name))
    assert {"logs:createloggroup", "logs:createlogstream", "logs:putlogevents"} <= actions


def test_deployed_names_match_the_settings_defaults() -> None:
    """The devserver and tests use the settings defaults; the deployment must agree."""
    defaults = settings.from_environ({})
    env = _config("api_handler").environment_variables
    assert env["SEALQ_QUEUES_TABLE"] == defaults.queues_table
    assert env["SEALQ_KEYS_TABLE"] == defaults.keys_table
    assert env["SEALQ_ACCOUNTS_TABLE"] == defaults.accounts_table
    assert env["SEALQ_PAYLOAD_BUCKET"] == defaults.payload_bucket
    assert env["SEALQ_DEFAULT_KMS_KEY"] == defaults.default_kms_key
    # chalice deploy names functions <app>-<stage>-<name>.
    assert env["SEALQ_KEY_SERVICE_FUNCTION"] == f"sealq-{STAGE}-key_service"


def test_only_the_handler_is_told_to_invoke_the_key_service() -> None:
    assert "SEALQ_KEY_SERVICE_FUNCTION" not in _config("key_service").environment_variables


def _merge_template() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO_ROOT / "infra" / "merge-template.json").read_text())
    return loaded["Resources"]


def test_the_merge_template_tables_match_what_local_provisioning_creates() -> None:
    from tools import provision

    resources = _merge_template()
    for logical, schema in (
        ("QueuesTable", provision.QUEUES_TABLE_SCHEMA),
        ("KeysTable", provision.KEYS_TABLE_SCHEMA),
        ("AccountsTable", provision.ACCOUNTS_TABLE_SCHEMA),
    ):
        props = resources[logical]["Properties"]
        for field, value in schema.items():
            assert props[field] == value, (logical, field)


def test_the_merge_template_names_match_the_settings_defaults() -> None:
    conf = settings.from_environ({})
    resources = _merge_template()
    assert resources["QueuesTable"]["Properties"]["TableName"] == conf.queues_table
    assert resources["KeysTable"]["Properties"]["TableName"] == conf.keys_table
    assert resources["AccountsTable"]["Properties"]["TableName"] == conf.accounts_table
    assert resources["PayloadBucket"]["Properties"]["BucketName"] == conf.payload_bucket
    assert resources["DefaultKeyAlias"]["Properties"]["AliasName"] == conf.default_kms_key
    handler_env = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert handler_env["SEALQ_KEY_SERVICE_FUNCTION"] == {"Ref": "KeyService"}


def test_the_payload_bucket_is_private_and_expires_orphans_everywhere(stack: None) -> None:
    import boto3

    from tools import provision

    bucket = _merge_template()["PayloadBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    deployed = {(r["Prefix"], r["ExpirationInDays"])
                for r in bucket["LifecycleConfiguration"]["Rules"]}
    local = {(r["Filter"]["Prefix"], r["Expiration"]["Days"])
             for r in provision.PAYLOAD_LIFECYCLE["Rules"]}
    assert deployed == local == {("payloads/", 15), ("quarantine/", 15)}
    s3 = boto3.client("s3", region_name="us-east-1")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=settings.get().payload_bucket)["Rules"]
    assert {(r["Filter"]["Prefix"], r["Expiration"]["Days"]) for r in rules} == local
