"""``make package``: the deployable CloudFormation template and Lambda zip.

    python -m tools.package [--stage dev|prod] [--api-type REST|HTTP] [--out build] [--no-lint]

Runs ``chalice package`` with ``infra/merge-template.json`` merged in, with no AWS
credentials and a placeholder region (the template names every region-, account-
and partition-specific value with pseudo-parameters, so the region chosen here does
not reach the template), then adds precompiled bytecode to the zip (Lambda's
``/var/task`` is read-only: without ``.pyc`` files every module is compiled again at
each cold start) and runs the pinned cfn-lint, which must report nothing at all.
Writes ``<out>/sam.json`` and ``<out>/deployment.zip``.

Not offline: chalice downloads the Lambda (manylinux, cp313) wheels of
``requirements.txt`` from the Python package index (pip's own configuration:
``PIP_INDEX_URL``, ``pip.conf``) whenever ``requirements.txt``, ``app.py`` or
``chalicelib/`` differ from every tree it packaged before; its cache is
``.chalice/deployments/<hash>-python3.13.zip``, so only a repeat of an already packaged
tree needs no network.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MERGE_TEMPLATE = ROOT / "infra" / "merge-template.json"
STAGES = ("dev", "prod")
# The API Gateway in front of the handler (the template's ApiType parameter).
API_TYPES = ("REST", "HTTP")
# Only used when none is configured: chalice needs a region to run, the template does not.
PLACEHOLDER_REGION = "us-east-1"
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class PackagingError(RuntimeError):
    """chalice package or cfn-lint failed; the message says which and why."""


# What chalice raises when pip cannot fetch the requirements' wheels.
_DOWNLOAD_FAILURES = ("NoSuchPackageError", "PackageDownloadError", "MissingDependencyError")


def offline_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment packaging runs in: no credentials reachable, a region set."""
    env = dict(os.environ if base is None else base)
    for name in _CREDENTIAL_VARIABLES:
        env.pop(name, None)
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if not env.get("AWS_DEFAULT_REGION"):
        env["AWS_DEFAULT_REGION"] = env.get("AWS_REGION") or PLACEHOLDER_REGION
    return env


def _tool(name: str) -> str:
    """A console script of this interpreter's environment (the project's .venv)."""
    found = Path(sys.executable).parent / name
    return str(found) if found.exists() else name


def chalice_package(stage: str, out: Path, project_dir: Path = ROOT) -> None:
    """``chalice package`` of ``stage`` into ``out`` (emptied first)."""
    if stage not in STAGES:
        raise PackagingError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")
    shutil.rmtree(out, ignore_errors=True)
    merge_template = project_dir / MERGE_TEMPLATE.relative_to(ROOT)
    command = [_tool("chalice"), "--project-dir", str(project_dir), "package", "--stage", stage,
               "--merge-template", str(merge_template), str(out)]
    done = subprocess.run(command, env=offline_environment(), capture_output=True, text=True,
                          check=False)
    said = f"{done.stdout}{done.stderr}"
    if done.returncode != 0 or any(f"{name}:" in said for name in _DOWNLOAD_FAILURES):
        if any(name in said for name in _DOWNLOAD_FAILURES):
            last = said.strip().splitlines()[-1] if said.strip() else ""
            raise PackagingError(
                f"chalice package --stage {stage} could not download the Lambda wheels of "
                "requirements.txt: packaging needs the Python package index (pip's own "
                "configuration: PIP_INDEX_URL, pip.conf) whenever requirements.txt, app.py "
                "or chalicelib/ differ from every tree packaged before (chalice's cache, "
                f".chalice/deployments/). chalice said: {last}")
        raise PackagingError(f"chalice package --stage {stage} failed:\n{said}")


def runtime_of(template: dict[str, object]) -> str:
    """The one Lambda runtime every function of the template uses (e.g. python3.13)."""
    resources = template["Resources"]
    assert isinstance(resources, dict)
    runtimes = {r["Properties"]["Runtime"] for r in resources.values()
                if r["Type"] == "AWS::Serverless::Function"}
    if len(runtimes) != 1:
        raise PackagingError(f"functions use several runtimes: {sorted(runtimes)}")
    return runtimes.pop()


def add_bytecode(zip_path: Path, runtime: str) -> int:
    """Add ``__pycache__`` bytecode for every module of the zip; returns how many.

    Compiled by this interpreter, which must be the runtime's version (bytecode is
    per minor version), as unchecked-hash pycs: valid whatever the files' mtimes.
    """
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if here != runtime:
        raise PackagingError(f"bytecode for {runtime} cannot be compiled by {here}")
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(zip_path) as source:
            source.extractall(tmp)
            names = set(source.namelist())
        compileall.compile_dir(
            tmp, quiet=2, workers=1, optimize=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        added = 0
        with zipfile.ZipFile(zip_path, "a", compression=zipfile.ZIP_DEFLATED) as target:
            for path in sorted(Path(tmp).rglob("*.pyc")):
                name = path.relative_to(tmp).as_posix()
                if name not in names:
                    target.write(path, name)
                    added += 1
    return added


def lint(template_path: Path) -> None:
    """The pinned cfn-lint on the template, its informational rules included (e.g.
    I3011, a stateful resource's DeletionPolicy left to the default): any error,
    warning or message fails."""
    done = subprocess.run([_tool("cfn-lint"), "--include-checks", "I", "--",
                           str(template_path)], capture_output=True, text=True, check=False)
    if done.returncode != 0 or done.stdout.strip() or done.stderr.strip():
        raise PackagingError(f"cfn-lint on {template_path}:\n{done.stdout}{done.stderr}")


def set_api_type(template_path: Path, api_type: str) -> None:
    """Make ``api_type`` the template's default ``ApiType`` (the stack parameter still
    chooses at deploy time: ``--parameter-overrides ApiType=...``)."""
    if api_type not in API_TYPES:
        raise PackagingError(f"unknown API type {api_type!r}: one of {', '.join(API_TYPES)}")
    template = json.loads(template_path.read_text())
    template["Parameters"]["ApiType"]["Default"] = api_type
    template_path.write_text(json.dumps(template, indent=2) + "\n")


def package(stage: str, out: Path, *, bytecode: bool = True, run_lint: bool = True,
            project_dir: Path = ROOT, api_type: str = "REST") -> Path:
    """Package ``stage`` of ``project_dir`` into ``out``, ``api_type`` the stack's default
    API; returns the template's path."""
    chalice_package(stage, out, project_dir)
    template_path = out / "sam.json"
    set_api_type(template_path, api_type)
    template = json.loads(template_path.read_text())
    if bytecode:
        add_bytecode(out / "deployment.zip", runtime_of(template))
    if run_lint:
        lint(template_path)
    return template_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.package", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--stage", default="dev", choices=STAGES)
    parser.add_argument("--api-type", default="REST", choices=API_TYPES,
                        help="the stack's default ApiType (REST or HTTP)")
    parser.add_argument("--out", default=str(ROOT / "build"))
    parser.add_argument("--no-lint", action="store_true")
    args = parser.parse_args(argv)
    try:
        template = package(args.stage, Path(args.out), run_lint=not args.no_lint,
                           api_type=args.api_type)
    except PackagingError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"{template} and {template.parent / 'deployment.zip'} (stage {args.stage}, "
          f"ApiType {args.api_type})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
