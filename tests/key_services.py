"""Key services on moto's KMS for the tests of the key service and of the handler's caches.

``make_container`` is one key-service container (a ``KeyServiceCore`` with its own
boto3 KMS client, its GenerateDataKey and Decrypt calls counted at botocore's layer);
``KmsKeyService`` stands in for the whole key service in front of the handler's
tier-1 cache.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib import settings
from chalicelib.clock import Clock, FakeClock
from chalicelib.keyservice import KeyServiceCore
from chalicelib.keyservice.api import DataKey, KeyServiceError
from tests.harness import REGION, serialized_dynamodb

# -- key-service containers ------------------------------------------------------------

QUEUE = "arn:aws:sqs:us-east-1:000000000000:orders"
CMK = "alias/sealq-default"
CONTEXT = {"sealq:queue": QUEUE, "sealq:account": "000000000000"}


@dataclass
class Container:
    core: KeyServiceCore
    kms: Any
    calls: Counter[str]

    @property
    def generates(self) -> int:
        return self.calls["GenerateDataKey"]

    @property
    def decrypts(self) -> int:
        return self.calls["Decrypt"]

    def data_key(self, queue: str = QUEUE, reuse_period: int = 300, cmk: str = CMK) -> Any:
        return self.core.data_key(
            queue_arn=queue, cmk=cmk, context=CONTEXT | {"sealq:queue": queue},
            reuse_period=reuse_period,
        )


def counted_kms() -> tuple[Any, Counter[str]]:
    """A fresh KMS client whose GenerateDataKey and Decrypt calls are counted."""
    kms = boto3.client("kms", region_name=REGION)
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    for op in ("GenerateDataKey", "Decrypt"):
        kms.meta.events.register(f"before-call.kms.{op}", count)
    return kms, calls


def make_container(
    clock: FakeClock,
    dynamodb: Any = None,
    *,
    sleep: Callable[[float], None] = lambda seconds: None,
    decrypt_ttl: float = 3600.0,
    name: str | None = None,
) -> Container:
    kms, calls = counted_kms()
    conf = settings.get()
    core = KeyServiceCore(
        kms=kms,
        dynamodb=dynamodb if dynamodb is not None else serialized_dynamodb(),
        table=conf.keys_table,
        default_kms_key=conf.default_kms_key,
        clock=clock,
        cache_size=128,
        decrypt_ttl=decrypt_ttl,
        sleep=sleep,
        container_id=name,
    )
    return Container(core, kms, calls)


def inject_kms_error(kms: Any, operation: str, code: str) -> Callable[[], None]:
    """Make ``operation`` fail with ``code`` (moto cannot); returns the undo."""
    event = f"before-call.kms.{operation}"

    def fail(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": code, "Message": "SECRET-DETAIL arn:aws:kms:injected"}},
            operation,
        )

    kms.meta.events.register(event, fail)
    return lambda: kms.meta.events.unregister(event, fail)


def scan_keys_table() -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    items: list[dict[str, Any]] = ddb.scan(TableName=settings.get().keys_table)["Items"]
    return items


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- a stand-in key service for the handler's tier-1 cache -----------------------------

DEFAULT_CMK = "alias/sealq-default"
QUEUE_A = "arn:aws:sqs:us-east-1:000000000000:a"
QUEUE_B = "arn:aws:sqs:us-east-1:000000000000:b"
REUSE = 300

_KMS_CODES = {
    "NotFoundException": "KmsNotFound",
    "DisabledException": "KmsDisabled",
    "AccessDeniedException": "KmsAccessDenied",
    "KMSInvalidStateException": "KmsInvalidState",
    "ThrottlingException": "KmsThrottled",
}


class KmsKeyService:
    """Stands in for the real key service (tested elsewhere): moto KMS, counted calls.

    ``deadline_offsets`` overrides the deadline of the next keys (seconds from now);
    ``hold`` makes the first call wait up to that long for a second, concurrent one,
    so a missing single-flight shows up as more than one call.
    """

    def __init__(self, clock: Clock, *, hold: float = 0.0) -> None:
        self.clock = clock
        self.hold = hold
        self.fail: KeyServiceError | None = None
        self.deadline_offsets: list[float] = []
        self.issued: list[DataKey] = []
        self.data_key_calls = 0
        self.decrypt_calls = 0
        self._lock = threading.Lock()
        self._second_caller = threading.Event()
        self._kms = boto3.client("kms", region_name="us-east-1")

    def _enter(self, counter: str) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)
            calls = self.data_key_calls + self.decrypt_calls
        if calls > 1:
            self._second_caller.set()
        elif self.hold:
            self._second_caller.wait(self.hold)
        if self.fail is not None:
            raise self.fail

    def _kms_call(self, call: Callable[[], dict]) -> dict:
        try:
            return call()
        except ClientError as err:
            code = err.response["Error"]["Code"]
            raise KeyServiceError(_KMS_CODES.get(code, "InternalFailure"), code) from None

    def data_key(
        self, *, queue_arn: str, cmk: str, context: Mapping[str, str], reuse_period: int
    ) -> DataKey:
        self._enter("data_key_calls")
        out = self._kms_call(
            lambda: self._kms.generate_data_key(
                KeyId=cmk, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        )
        offset = self.deadline_offsets.pop(0) if self.deadline_offsets else reuse_period
        key = DataKey(
            plaintext=out["Plaintext"],
            encrypted=out["CiphertextBlob"],
            cmk_arn=out["KeyId"],
            deadline=self.clock.now() + offset,
        )
        self.issued.append(key)
        return key

    def decrypt_key(self, *, encrypted: bytes, cmk_arn: str, context: Mapping[str, str]) -> bytes:
        self._enter("decrypt_calls")
        out = self._kms_call(
            lambda: self._kms.decrypt(
                CiphertextBlob=encrypted, KeyId=cmk_arn, EncryptionContext=dict(context)
            )
        )
        return bytes(out["Plaintext"])

    def service_secret(self, name: str) -> bytes:
        raise NotImplementedError
