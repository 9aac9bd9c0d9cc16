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

Configuration is the deployment's (``SEALQ_*`` variables: tables, bucket, endpoint,
``SEALQ_KEY_SERVICE_FUNCTION`` for a deployed stack's key service; without it the
key service runs in this process). ``--stack NAME`` (before the command) reads them
from a deployed CloudFormation stack's outputs instead, in the operator's region
(``AWS_REGION``/``AWS_DEFAULT_REGION`` or the profile's). Output is one JSON object per
command, on its last line of stdout. A new secret access key is printed once, there, and never
logged or stored other than sealed by the key service. Handlers notice a
deactivated or deleted key within ``SEALQ_AUTH_CACHE_TTL`` seconds.
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
from chalicelib.settings import Settings
from chalicelib.storage.accounts import DynamoAccountStore
from chalicelib.storage.errors import StorageError
from chalicelib.storage.mappings import LambdaMappings
from chalicelib.storage.ports import ACTIVE, INACTIVE
from chalicelib.storage.quarantine import S3QuarantineStore
from chalicelib.storage.queue_table import DynamoQueueTable
from tools.admin import triggers
from tools.admin.accounts import Accounts, UnknownAccount, UnknownKey, same_key_forms

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
    clients = Clients(session or boto3.session.Session(), conf.region, conf.aws_endpoint)
    store = DynamoAccountStore(clients.get("accounts"), conf.accounts_table)
    return Accounts(store, key_service_process.client(conf, clients), SYSTEM_CLOCK)


def trigger_operations(conf: Settings, session: boto3.session.Session | None = None
                       ) -> triggers.Triggers:
    """The operator's trigger operations on the deployment ``conf`` describes: event
    source mappings when it has a delivery function (a deployed stack), else the queue
    table alone (the local stack delivers in-process)."""
    clients = Clients(session or boto3.session.Session(), conf.region, conf.aws_endpoint)
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


class StackError(RuntimeError):
    """The stack is missing, or lacks an output the admin command needs."""


def stack_environment(stack: str, session: boto3.session.Session | None = None,
                      ) -> dict[str, str]:
    """The ``SEALQ_*`` settings of deployed stack ``stack``, from its outputs."""
    cfn = (session or boto3.session.Session()).client("cloudformation")
    try:
        (found,) = cfn.describe_stacks(StackName=stack)["Stacks"]
    except cfn.exceptions.ClientError as err:
        raise StackError(f"cannot read stack {stack!r}: "
                         f"{err.response.get('Error', {}).get('Code', 'error')}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}
    missing = sorted(set(STACK_OUTPUTS) - set(outputs))
    if missing:
        raise StackError(f"stack {stack!r} has no output {', '.join(missing)}: "
                         "is it a sealq stack, fully deployed?")
    env = {setting: outputs[output] for output, setting in STACK_OUTPUTS.items()}
    region = cfn.meta.region_name
    env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    return env


def _quarantine(conf: Settings, command: str, account: str, queue: str) -> tuple[int, Any]:
    session = boto3.session.Session()

    def client(service: str) -> object:
        return session.client(service, region_name=conf.region, endpoint_url=conf.aws_endpoint)

    table = DynamoQueueTable(client("dynamodb"), conf.queues_table)
    quarantine = S3QuarantineStore(client("s3"), conf.payload_bucket)
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


def _accounts_command(
    ops: Accounts, command: str, args: argparse.Namespace, conf: Settings
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
    forms = same_key_forms(args.cmk, region=conf.region, account=_service_account(conf))
    for form in sorted(forms):
        ops.set_kms_key(args.account, form, allowed)
    return {"AccountId": args.account, "KmsKey": args.cmk, "Allowed": allowed,
            "Forms": sorted(forms)}


def _service_account(conf: Settings) -> str | None:
    """The AWS account sealq's own keys live in: where its default key is (the
    operator's credentials may describe it); None when that cannot be found out."""
    kms = boto3.session.Session().client(
        "kms", region_name=conf.region, endpoint_url=conf.aws_endpoint)
    try:
        arn = str(kms.describe_key(KeyId=conf.default_kms_key)["KeyMetadata"]["Arn"])
    except (BotoCoreError, ClientError, KeyError):
        return None
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4].isdigit() else None


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
    if args.stack:
        try:
            conf = settings.from_environ({**os.environ, **stack_environment(args.stack)})
        except StackError as err:
            print(json.dumps({"error": "StackError", "message": str(err)}), file=sys.stderr)
            return 2
    conf = conf or settings.get()
    try:
        if args.command.startswith("quarantine-"):
            code, out = _quarantine(conf, args.command, args.account, args.queue)
        elif args.command in triggers.COMMANDS:
            code, out = 0, triggers.run(trigger_operations(conf), args)
        else:
            code, out = 0, _accounts_command(accounts(conf), args.command, args, conf)
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
        print(json.dumps({"error": type(err).__name__, "code": err.code}), file=sys.stderr)
        return 2
    except KeyServiceError as err:
        print(json.dumps({"error": "KeyServiceError", "code": err.code}), file=sys.stderr)
        return 2
    print(json.dumps(out))
    return code


if __name__ == "__main__":
    sys.exit(run())
