"""The operator's command (admin plane): reaches sealq's tables, bucket and key service
with the operator's own AWS credentials, never through the public API.

    python -m tools.admin create-account NAME          a new account and its first access key
    python -m tools.admin list-accounts
    python -m tools.admin create-access-key ACCOUNT
    python -m tools.admin list-access-keys ACCOUNT
    python -m tools.admin deactivate-access-key KEY    (activate-access-key KEY undoes it)
    python -m tools.admin delete-access-key KEY
    python -m tools.admin allow-kms-key ACCOUNT CMK
    python -m tools.admin disallow-kms-key ACCOUNT CMK
    python -m tools.admin quarantine-list ACCOUNT QUEUE
    python -m tools.admin quarantine-count ACCOUNT QUEUE
    python -m tools.admin quarantine-purge ACCOUNT QUEUE
    python -m tools.admin create-trigger ACCOUNT QUEUE FUNCTION [options]   (see triggers.py;
        list-triggers, update-trigger, enable-trigger, disable-trigger, delete-trigger)

Where it acts, first match wins:

- ``--stack NAME`` (before the command): a deployed CloudFormation stack's names, from
  its outputs;
- ``SEALQ_AWS_ENDPOINT`` or other ``SEALQ_*`` variables: the deployment they describe
  (tables, bucket, endpoint, ``SEALQ_KEY_SERVICE_FUNCTION`` for a deployed key service;
  without it the key service runs in this process);
- the local stack ``make run`` is serving (its ``.sealq/endpoint.json``), with no
  variable set.

Every AWS client it makes works in one region: the local stack's, else ``AWS_REGION``,
then ``AWS_DEFAULT_REGION``, then the profile's region. Output is one JSON object per
command, on its last line of stdout; a failure is one JSON line on stderr whose
``message`` says what went wrong and what to do (exit 2), never a traceback. A new
secret access key is printed once, there, and never logged or stored other than
sealed by the key service. Handlers notice a deactivated or deleted key within
``SEALQ_AUTH_CACHE_TTL`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import settings
from chalicelib.aws.clients import Clients
from chalicelib.clock import SYSTEM_CLOCK
from chalicelib.domain.queues.records import QueueRecords
from chalicelib.keyservice import process as key_service_process
from chalicelib.keyservice.api import KeyServiceError
from chalicelib.settings import Settings, SettingsError
from chalicelib.storage.accounts import DynamoAccountStore
from chalicelib.storage.errors import Denied, Gone, StorageError, Transient
from chalicelib.storage.mappings import LambdaMappings
from chalicelib.storage.ports import ACTIVE, INACTIVE
from chalicelib.storage.quarantine import S3QuarantineStore
from chalicelib.storage.queue_table import DynamoQueueTable
from tools.admin import triggers
from tools.admin.accounts import Accounts, UnknownAccount, UnknownKey, same_key_forms
from tools.local import endpoint as local_endpoint

# command -> its positional arguments
COMMANDS: dict[str, tuple[str, ...]] = {
    "create-account": ("name",),
    "list-accounts": (),
    "create-access-key": ("account",),
    "list-access-keys": ("account",),
    "deactivate-access-key": ("key",),
    "activate-access-key": ("key",),
    "delete-access-key": ("key",),
    "allow-kms-key": ("account", "cmk"),
    "disallow-kms-key": ("account", "cmk"),
    "quarantine-list": ("account", "queue"),
    "quarantine-count": ("account", "queue"),
    "quarantine-purge": ("account", "queue"),
}


def accounts(conf: Settings, session: boto3.session.Session | None = None) -> Accounts:
    """The operator's account operations on the deployment ``conf`` describes."""
    clients = Clients(session or boto3.session.Session(region_name=conf.region), conf.region,
                      conf.aws_endpoint)
    store = DynamoAccountStore(clients.get("accounts"), conf.accounts_table)
    return Accounts(store, key_service_process.client(conf, clients), SYSTEM_CLOCK)


def trigger_operations(conf: Settings, session: boto3.session.Session | None = None
                       ) -> triggers.Triggers:
    """The operator's trigger operations on the deployment ``conf`` describes: event
    source mappings when it has a delivery function (a deployed stack), else the queue
    table alone (the local stack delivers in-process)."""
    clients = Clients(session or boto3.session.Session(region_name=conf.region), conf.region,
                      conf.aws_endpoint)
    table = DynamoQueueTable(clients.get("queues"), conf.queues_table)
    records = QueueRecords(table, region=conf.region, default_cmk=conf.default_kms_key,
                           clock=SYSTEM_CLOCK, cache_ttl=0)
    mappings = (LambdaMappings(clients.get("mappings"), conf.delivery_function)
                if conf.delivery_function else None)
    return triggers.Triggers(table, records, mappings)


# Stack output -> the setting it configures (infra/merge-template.json's Outputs).
STACK_OUTPUTS = {
    "QueuesTable": "SEALQ_QUEUES_TABLE",
    "KeysTable": "SEALQ_KEYS_TABLE",
    "AccountsTable": "SEALQ_ACCOUNTS_TABLE",
    "PayloadBucket": "SEALQ_PAYLOAD_BUCKET",
    "DefaultKmsKey": "SEALQ_DEFAULT_KMS_KEY",
    "KeyServiceFunction": "SEALQ_KEY_SERVICE_FUNCTION",
    "BackingQueuePrefix": "SEALQ_BACKING_QUEUE_PREFIX",
    "DeliveryFunction": "SEALQ_DELIVERY_FUNCTION",
}
# Variables that describe a deployment: any of them set means "act there", not on the
# local stack.
_DEPLOYMENT_VARIABLES = ("SEALQ_AWS_ENDPOINT", *STACK_OUTPUTS.values())


class AdminError(Exception):
    """A failure the operator can act on; ``str()`` says it in one line."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class StackError(AdminError):
    """The stack is missing, unreadable, or lacks an output the admin command needs."""


def operator_region(session: boto3.session.Session, environ: Any = None) -> str | None:
    """``AWS_REGION``, then ``AWS_DEFAULT_REGION``, then the profile's region (botocore
    itself reads only the last two); None when none is set."""
    env = os.environ if environ is None else environ
    return env.get("AWS_REGION") or session.region_name or None


def _operator_session(environ: Any = None) -> boto3.session.Session:
    """A session with the operator's credentials (profile) in the operator's region."""
    try:
        probe = boto3.session.Session()
        region = operator_region(probe, environ)
        if region is None:
            raise AdminError("NoRegion", "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, "
                             "or a region in your AWS profile) to the stack's region")
        return boto3.session.Session(region_name=region)
    except BotoCoreError as err:  # e.g. a profile that does not exist
        raise AdminError(type(err).__name__, f"cannot use your AWS configuration: {err}") from None


def stack_environment(stack: str, session: boto3.session.Session | None = None,
                      ) -> dict[str, str]:
    """The ``SEALQ_*`` settings of deployed stack ``stack``, from its outputs, and the
    region it lives in (the session's: the operator's region by default)."""
    session = session or _operator_session()
    region = session.region_name
    cfn = session.client("cloudformation", region_name=region)
    try:
        (found,) = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        error = err.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in str(
                error.get("Message", "")):
            raise StackError("StackNotFound", f"stack {stack!r} does not exist in {region} "
                             "(AWS_REGION, AWS_DEFAULT_REGION or your profile's region "
                             "chooses the region)") from None
        raise StackError("StackError", f"cannot read stack {stack!r} in {region}: "
                         f"{error.get('Code', 'error')}") from None
    except BotoCoreError as err:
        raise StackError("StackError", f"cannot read stack {stack!r} in {region}: "
                         f"{_botocore_reason(err)}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    missing = sorted(set(STACK_OUTPUTS) - set(outputs))
    if missing:
        raise StackError("StackError", f"stack {stack!r} has no output {', '.join(missing)}: "
                         "is it a sealq stack, fully deployed?")
    env = {setting: outputs[output] for output, setting in STACK_OUTPUTS.items()}
    env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    return env


class Target:
    """Where the command acts: the settings, one boto3 session in their region, and
    how to name the place in a message."""

    def __init__(self, conf: Settings, session: boto3.session.Session, where: str) -> None:
        self.conf = conf
        self.session = session
        self.where = where

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.conf.region,
                                   endpoint_url=self.conf.aws_endpoint)


def target(stack: str | None, environ: Any = None) -> Target:
    """The deployment the command acts on (see the module's docstring)."""
    env = dict(os.environ if environ is None else environ)
    try:
        if stack:
            session = _operator_session(env)
            conf = settings.from_environ({**env, **stack_environment(stack, session)})
            return Target(conf, session, f"stack {stack} in {conf.region}")
        if not any(env.get(name) for name in _DEPLOYMENT_VARIABLES):
            local = _local_stack(env)
            if local is not None:
                return local
        # The settings' own default region (the local one) when the operator names none.
        region = operator_region(boto3.session.Session(), env) or settings.from_environ(
            env).region
        conf = settings.from_environ({**env, "AWS_REGION": region})
        return Target(conf, boto3.session.Session(region_name=region),
                      conf.aws_endpoint or f"AWS {region}")
    except SettingsError as err:
        raise AdminError("InvalidConfiguration", str(err)) from None
    except BotoCoreError as err:
        raise AdminError(type(err).__name__, f"cannot use your AWS configuration: {err}") from None


def _local_stack(env: dict[str, str]) -> Target | None:
    """The local stack ``make run`` serves, from its endpoint file; None when it wrote none."""
    path = local_endpoint.state_dir(env) / local_endpoint.ENDPOINT_FILE
    try:
        found = local_endpoint.read(path)
    except local_endpoint.StaleEndpoint as err:
        raise AdminError("NoLocalStack", str(err)) from None
    if found is None:
        return None
    conf = settings.from_environ({**env, **found.environment()})
    credentials: dict[str, str] = {}
    if found.dummy_credentials:
        credentials = {"aws_access_key_id": local_endpoint.MOTO_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                       "aws_secret_access_key":
                           local_endpoint.MOTO_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    session = boto3.session.Session(region_name=conf.region, **credentials)
    return Target(conf, session, f"the local stack at {found.url}")


_SERVICES = {"dynamodb": "DynamoDB", "s3": "S3", "lambda": "the key-service function",
             "kms": "KMS", "sqs": "SQS"}


def _botocore_reason(err: BaseException) -> str:
    name = type(err).__name__
    if name == "NoCredentialsError":
        return "no AWS credentials (set AWS_PROFILE or run `aws configure`)"
    if name in ("EndpointConnectionError", "ConnectionError", "ConnectTimeoutError"):
        return "cannot connect"
    return name


def storage_message(err: StorageError, where: str) -> str:
    """A storage failure as one sentence the operator can act on."""
    service = _SERVICES.get(err.service, err.service)
    if err.code == "NoCredentialsError":
        return (f"no AWS credentials to reach {service} of {where}: set AWS_PROFILE or run "
                "`aws configure`; for the local stack, start `make run` first")
    if err.code in ("EndpointConnectionError", "ConnectionError", "ConnectTimeoutError"):
        return f"cannot connect to {service} of {where}: is it running?"
    if isinstance(err, Gone):
        return (f"{service} of {where} has no such table, bucket or function ({err.code}): "
                "is it deployed? pass STACK=<stack name> for a deployed stack")
    if isinstance(err, Denied):
        return f"{service} of {where} refused your credentials ({err.code})"
    if isinstance(err, Transient):
        return f"{service} of {where} is unavailable right now ({err.code}): try again"
    return f"{service} of {where} failed: {err.code}"


def _quarantine(where: Target, command: str, account: str, queue: str) -> tuple[int, Any]:
    conf = where.conf
    table = DynamoQueueTable(where.client("dynamodb"), conf.queues_table)
    quarantine = S3QuarantineStore(where.client("s3"), conf.payload_bucket)
    record = table.get(account, queue)
    if record is None:
        return 1, {"error": "QueueDoesNotExist", "queue": queue}
    queue_id = record.quarantine_id
    if command == "quarantine-purge":
        return 0, {"Queue": queue, "Purged": quarantine.purge(queue_id)}
    ids = quarantine.list(queue_id)
    out: dict[str, object] = {"Queue": queue, "Count": len(ids)}
    if command == "quarantine-list":
        out["MessageIds"] = ids
    return 0, out


def _accounts_command(ops: Accounts, command: str, args: argparse.Namespace, where: Target
                      ) -> Any:
    if command == "create-account":
        account = ops.create_account(args.name)
        return {"AccountName": account.name, **ops.create_access_key(account.account_id).as_json()}
    if command == "list-accounts":
        return {"Accounts": [{"AccountId": a.account_id, "AccountName": a.name,
                              "KmsKeys": sorted(a.kms_keys)} for a in ops.list_accounts()]}
    if command == "create-access-key":
        return ops.create_access_key(args.account).as_json()
    if command == "list-access-keys":
        return {"AccessKeys": [{"AccessKeyId": k.access_key_id, "Status": k.status,
                                "CreateDate": k.created_at}
                               for k in ops.list_access_keys(args.account)]}
    if command in ("deactivate-access-key", "activate-access-key"):
        status = INACTIVE if command.startswith("de") else ACTIVE
        ops.set_access_key_status(args.key, status)
        return {"AccessKeyId": args.key, "Status": status}
    if command == "delete-access-key":
        ops.delete_access_key(args.key)
        return {"AccessKeyId": args.key, "Deleted": True}
    allowed = command == "allow-kms-key"
    forms = same_key_forms(args.cmk, region=where.conf.region, account=_service_account(where))
    for form in sorted(forms):
        ops.set_kms_key(args.account, form, allowed)
    return {"AccountId": args.account, "KmsKey": args.cmk, "Allowed": allowed,
            "Forms": sorted(forms)}


def _service_account(where: Target) -> str | None:
    """The AWS account sealq's own keys live in: where its default key is (the
    operator's credentials may describe it); None when that cannot be found out."""
    kms = where.client("kms")
    try:
        arn = str(kms.describe_key(KeyId=where.conf.default_kms_key)["KeyMetadata"]["Arn"])
    except (BotoCoreError, ClientError, KeyError):
        return None
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else None


def _fail(kind: str, message: str, **extra: str) -> int:
    print(json.dumps({"error": kind, **extra, "message": message}), file=sys.stderr)
    return 2


def run(argv: Sequence[str] | None = None, conf: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="a deployed sealq stack: settings from its outputs")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, names in COMMANDS.items():
        each = sub.add_parser(command)
        for name in names:
            each.add_argument(name)
    triggers.add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        where = (target(args.stack) if conf is None else
                 Target(conf, boto3.session.Session(region_name=conf.region),
                        conf.aws_endpoint or f"AWS {conf.region}"))
    except AdminError as err:
        return _fail(err.kind, str(err))
    try:
        if args.command.startswith("quarantine-"):
            code, out = _quarantine(where, args.command, args.account, args.queue)
        elif args.command in triggers.COMMANDS:
            code, out = 0, triggers.run(trigger_operations(where.conf, where.session), args)
        else:
            ops = accounts(where.conf, where.session)
            code, out = 0, _accounts_command(ops, args.command, args, where)
    except triggers.TriggerError as err:
        code, out = 1, {"error": err.code, "message": err.message}
    except triggers.NoSuchQueue as err:
        code, out = 1, {"error": "ResourceNotFoundException", "message": str(err)}
    except UnknownAccount as err:
        code, out = 1, {"error": "NoSuchAccount", "account": str(err)}
    except UnknownKey as err:
        code, out = 1, {"error": "NoSuchAccessKey", "key": str(err)}
    except ValueError as err:
        code, out = 1, {"error": "InvalidArgument", "message": str(err)}
    except StorageError as err:
        return _fail(type(err).__name__, storage_message(err, where.where), code=err.code)
    except KeyServiceError as err:
        function = where.conf.key_service_function or "in this process"
        return _fail("KeyServiceError", f"the key service ({function}) of {where.where} "
                     f"failed: {err.code}", code=err.code)
    except (BotoCoreError, ClientError) as err:
        return _fail(type(err).__name__, f"{where.where}: {_botocore_reason(err)}")
    print(json.dumps(out))
    return code


if __name__ == "__main__":
    sys.exit(run())
