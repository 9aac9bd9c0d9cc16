"""The operator's command (admin plane): reaches sealq's tables and bucket with the
operator's own AWS credentials, never through the public API.

    python -m tools.admin quarantine-list ACCOUNT QUEUE
    python -m tools.admin quarantine-count ACCOUNT QUEUE
    python -m tools.admin quarantine-purge ACCOUNT QUEUE

Configuration is the deployment's (``SEALQ_*`` variables: tables, bucket, endpoint).
Output is one JSON object per command on stdout; quarantined records hold the
messages as stored (sealed), never plaintext.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import boto3

from chalicelib import settings
from chalicelib.settings import Settings
from chalicelib.storage.errors import StorageError
from chalicelib.storage.quarantine import S3QuarantineStore
from chalicelib.storage.queue_table import DynamoQueueTable


def _stores(conf: Settings) -> tuple[DynamoQueueTable, S3QuarantineStore]:
    session = boto3.session.Session()

    def client(service: str) -> object:
        return session.client(service, region_name=conf.region, endpoint_url=conf.aws_endpoint)

    return (DynamoQueueTable(client("dynamodb"), conf.queues_table),
            S3QuarantineStore(client("s3"), conf.payload_bucket))


def run(argv: Sequence[str] | None = None, conf: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command",
                        choices=["quarantine-list", "quarantine-count", "quarantine-purge"])
    parser.add_argument("account")
    parser.add_argument("queue")
    args = parser.parse_args(argv)
    conf = conf or settings.get()
    table, quarantine = _stores(conf)
    try:
        record = table.get(args.account, args.queue)
        if record is None:
            print(json.dumps({"error": "QueueDoesNotExist", "queue": args.queue}))
            return 1
        queue_id = record.queue_id or f"{record.account}-{record.name}"
        if args.command == "quarantine-purge":
            print(json.dumps({"Queue": args.queue, "Purged": quarantine.purge(queue_id)}))
        else:
            ids = quarantine.list(queue_id)
            out: dict[str, object] = {"Queue": args.queue, "Count": len(ids)}
            if args.command == "quarantine-list":
                out["MessageIds"] = ids
            print(json.dumps(out))
    except StorageError as err:
        print(json.dumps({"error": type(err).__name__, "code": err.code}), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(run())
