"""Create what sealq needs in an AWS endpoint, only what is missing.

Used by the local stack (embedded or external moto, LocalStack) and by tests. In
AWS the same resources come from ``infra/merge-template.json``; the schemas here
and there must agree (tests/functional/tools/test_infra.py checks it).
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.settings import Settings

QUEUES_TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [
        {"AttributeName": "account", "KeyType": "HASH"},
        {"AttributeName": "name", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "account", "AttributeType": "S"},
        {"AttributeName": "name", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}

# Sealed bodies of messages that expired or were purged are never read again;
# retention is at most 14 days, so anything older than 15 can go.
PAYLOAD_LIFECYCLE: dict[str, Any] = {
    "Rules": [
        {
            "ID": "expire-orphaned-payloads",
            "Status": "Enabled",
            "Filter": {"Prefix": "payloads/"},
            "Expiration": {"Days": 15},
        },
        # Quarantined messages are kept at least as long as any queue keeps messages.
        {
            "ID": "expire-quarantine",
            "Status": "Enabled",
            "Filter": {"Prefix": "quarantine/"},
            "Expiration": {"Days": 15},
        },
    ]
}

KEYS_TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}


# Accounts and access keys: ``account#<id>`` and ``key#<access key id>`` items.
ACCOUNTS_TABLE_SCHEMA: dict[str, Any] = {
    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
    "BillingMode": "PAY_PER_REQUEST",
}


def _ensure_table(ddb: Any, name: str, schema: dict[str, Any]) -> bool:
    try:
        ddb.describe_table(TableName=name)
        return False
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    ddb.create_table(TableName=name, **schema)
    ddb.get_waiter("table_exists").wait(TableName=name)
    return True


def _ensure_bucket(s3: Any, name: str, region: str) -> bool:
    try:
        s3.head_bucket(Bucket=name)
        return False
    except ClientError as err:
        if err.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
        )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name, LifecycleConfiguration=PAYLOAD_LIFECYCLE
    )
    return True


def _ensure_default_key(kms: Any, alias: str) -> bool:
    """Create the service's default CMK under ``alias`` unless the alias exists."""
    if not alias.startswith("alias/"):
        return False  # a key id or ARN was configured: it must already exist
    try:
        kms.describe_key(KeyId=alias)
        return False
    except ClientError as err:
        if err.response["Error"]["Code"] != "NotFoundException":
            raise
    key_id = kms.create_key(
        Description="sealq default key (queues without KmsMasterKeyId)",
        KeyUsage="ENCRYPT_DECRYPT",
    )["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return True


def ensure_resources(
    conf: Settings | None = None, session: boto3.session.Session | None = None
) -> list[str]:
    """Create the tables, bucket and default CMK that are missing; name what was made."""
    conf = conf or settings.get()
    session = session or boto3.session.Session()

    def client(service: str) -> Any:
        return session.client(service, region_name=conf.region, endpoint_url=conf.aws_endpoint)

    ddb = client("dynamodb")
    made = []
    if _ensure_table(ddb, conf.queues_table, QUEUES_TABLE_SCHEMA):
        made.append(f"table {conf.queues_table}")
    if _ensure_table(ddb, conf.keys_table, KEYS_TABLE_SCHEMA):
        made.append(f"table {conf.keys_table}")
    if _ensure_table(ddb, conf.accounts_table, ACCOUNTS_TABLE_SCHEMA):
        made.append(f"table {conf.accounts_table}")
    if _ensure_bucket(client("s3"), conf.payload_bucket, conf.region):
        made.append(f"bucket {conf.payload_bucket}")
    if _ensure_default_key(client("kms"), conf.default_kms_key):
        made.append(f"key {conf.default_kms_key}")
    return made
