"""The shape the code keeps: AWS behind the ports, one concern per room.

Read from the source itself (no import needed): what each package imports and which
string literals it holds.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chalicelib.keyservice import kms
from chalicelib.storage import translate
from tests.harness import ROOT

CHALICELIB = ROOT / "chalicelib"
# Where sealq's own logic lives: no botocore, no backing service's error code.
AWS_FREE = ("domain", "crypto", "auth", "protocol", "handler", "delivery")
MAX_LINES = 450


def modules(*packages: str) -> list[Path]:
    """The modules of ``packages`` (``""``: all of chalicelib). Each must exist and hold
    some: a renamed or emptied package fails here rather than leaving its checks with
    nothing to check."""
    found: list[Path] = []
    for package in packages:
        directory = CHALICELIB / package
        assert directory.is_dir(), f"{directory} is gone: name the package it became"
        held = sorted(directory.rglob("*.py"))
        assert held, f"{directory} holds no module"
        found += held
    assert found, "no package named"
    return sorted(found)


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def literals(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def backing_codes() -> set[str]:
    """The error codes of DynamoDB, S3, KMS and Lambda that the adapters translate, less
    those SQS answers with itself (sealq's own vocabulary, chalicelib/errors.py)."""
    tables = [value for name, value in vars(translate).items()
              if name.startswith("_") and isinstance(value, frozenset)]
    codes = set().union(*tables) | set(kms._KMS_ERRORS)
    sqs_own = literals(CHALICELIB / "errors.py")
    return {c for c in codes
            if c not in sqs_own and not c.startswith("AWS.SimpleQueueService.") and c.isalpha()}


@pytest.mark.parametrize("path", modules(*AWS_FREE), ids=lambda p: str(p.relative_to(ROOT)))
def test_sealqs_own_logic_imports_no_botocore(path: Path) -> None:
    assert not {m for m in imported(path) if m.split(".")[0] == "botocore"}


@pytest.mark.parametrize("path", modules(*AWS_FREE), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_backing_services_error_code_crosses_the_ports(path: Path) -> None:
    assert not literals(path) & backing_codes()


def test_the_backing_codes_checked_are_the_ones_the_adapters_know() -> None:
    codes = backing_codes()
    assert {"ConditionalCheckFailedException", "NoSuchKey", "DisabledException",
            "TransactionConflictException"} <= codes
    assert "QueueDoesNotExist" not in codes  # SQS's own: the domain answers with it


@pytest.mark.parametrize("path", modules(""), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_grows_past_one_concern(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_the_domain_knows_nothing_of_the_wire_or_the_functions() -> None:
    for path in modules("domain", "crypto", "storage", "keyservice"):
        assert not {m for m in imported(path)
                    if m.startswith(("chalicelib.protocol", "chalicelib.handler"))}, path


def test_storage_and_the_key_service_know_nothing_above_them() -> None:
    for path in modules("storage", "keyservice"):
        assert not {m for m in imported(path) if m.startswith(
            ("chalicelib.domain", "chalicelib.auth", "chalicelib.crypto.sealing"))}, path


def test_no_lambda_module_imports_the_admin_plane_tests_or_tools() -> None:
    for path in modules(""):
        assert not {m for m in imported(path) if m.split(".")[0] in ("tools", "tests", "bench")}
