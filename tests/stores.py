"""What a deployment stores on moto, read straight from the stores the way an auditor
would: backing messages, the sealed bytes they hold, every byte of DynamoDB and S3."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import aws_encryption_sdk
import boto3
import botocore.session
from aws_encryption_sdk.identifiers import CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header

from chalicelib import settings
from tests.harness import REGION


def backing_messages() -> list[dict[str, Any]]:
    """Every message in every backing queue, read straight from (moto's) SQS."""
    sqs = boto3.client("sqs", region_name=REGION)
    found = []
    for url in sqs.list_queues(QueueNamePrefix="sealq-").get("QueueUrls", []):
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        for message in out.get("Messages", []):
            found.append({"queue": url, **message})
    return found


def backing_url_of(name: str) -> str:
    """The backing queue the registry (DynamoDB) records for queue ``name``."""
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=settings.get().queues_table,
        Key={"account": {"S": "000000000000"}, "name": {"S": name}},
    )["Item"]
    return str(item["backing_url"]["S"])


def sealed_bytes(body: str) -> bytes:
    """The ESDK message a backing body holds inline or points to in S3."""
    if body.startswith("{"):
        ref = json.loads(body)["sealq-s3"]
        s3 = boto3.client("s3", region_name=REGION)
        obj = s3.get_object(Bucket=ref["bucket"], Key=ref["key"])
        data: bytes = obj["Body"].read()
        return data
    return base64.b64decode(body)


def header_of(sealed: bytes) -> Any:
    header, _ = deserialize_header(io.BytesIO(sealed))
    return header


def open_plain(sealed: bytes) -> bytes:
    """A stored message opened with the stock Encryption SDK and KMS: no sealq code."""
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[header_of(sealed).encrypted_data_keys.pop().key_provider.key_info.decode()],
        botocore_session=botocore.session.Session(),
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    plaintext, _ = client.decrypt(source=sealed, key_provider=provider)
    data: bytes = plaintext
    return data


def everything_stored() -> bytes:
    """All bytes in DynamoDB, S3 and the backing queues (base64 bodies also decoded)."""
    chunks: list[bytes] = []
    ddb = boto3.client("dynamodb", region_name=REGION)
    for table in ddb.list_tables()["TableNames"]:
        for item in ddb.scan(TableName=table)["Items"]:
            for value in item.values():
                for kind, inner in value.items():
                    chunks.append(inner if kind == "B" else json.dumps(inner).encode())
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in s3.list_buckets()["Buckets"]:
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            chunks.append(s3.get_object(Bucket=bucket["Name"], Key=obj["Key"])["Body"].read())
    for message in backing_messages():
        chunks.append(message["Body"].encode())
        if not message["Body"].startswith("{"):
            chunks.append(base64.b64decode(message["Body"]))
    return b"\n".join(chunks)
