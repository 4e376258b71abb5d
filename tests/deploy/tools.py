"""Where the deploy checks find their tools, and how they run them.

The validators live in virtualenvs made by scripts/install-deploy-tools.sh (they pin libraries
that would clash with laneway's). A missing tool skips its tests on a developer machine, with the
command that installs it; under CI (where that script always runs first) it is a failure, so a
broken install can never pass as a row of skips.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".tools"
DEPLOY_VENV = TOOLS / "deploy-venv"
CHECKOV_VENV = TOOLS / "checkov-venv"
HERE = Path(__file__).resolve().parent

INSTALL_HINT = "run `bash scripts/install-deploy-tools.sh` first"
TF_MIRROR = Path("/opt/tf-plugins")

# The SAM CLI and the translator ask boto for a region; nothing is ever sent to it.
AWS_OFFLINE_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "SAM_CLI_TELEMETRY": "0",
    "AWS_ACCESS_KEY_ID": "offline",
    "AWS_SECRET_ACCESS_KEY": "offline",
}


def host_arch() -> str:
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def host_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def require(path: Path, what: str) -> Path:
    """The tool at `path`, or a skip (a failure under CI) that says how to get it."""
    if path.exists():
        return path
    message = f"{what} not found at {path}: {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def sam() -> Path:
    return require(DEPLOY_VENV / "bin" / "sam", "AWS SAM CLI")


def cfn_lint() -> Path:
    return require(DEPLOY_VENV / "bin" / "cfn-lint", "cfn-lint")


def deploy_python() -> Path:
    return require(DEPLOY_VENV / "bin" / "python", "deploy-tools Python")


def checkov() -> Path:
    return require(CHECKOV_VENV / "bin" / "checkov", "checkov")


def rie_binary() -> Path:
    """The Lambda Runtime Interface Emulator shipped inside the aws-sam-cli wheel."""
    name = f"aws-lambda-rie-{host_arch()}"
    found = sorted(DEPLOY_VENV.glob(f"lib/python*/site-packages/samcli/local/rapid/{name}"))
    return require(found[0] if found else DEPLOY_VENV / name, "Lambda RIE binary")


def lambda_deps_cache() -> Path:
    cache = TOOLS / "lambda-deps" / f"{host_arch()}-py{host_python()}"
    return require(cache / ".laneway-deps.json", "Lambda dependency cache").parent


def terraform() -> Path:
    """Terraform is a machine tool, not something the install script provides: skip without."""
    found = shutil.which("terraform")
    if not found:
        pytest.skip("terraform is not installed on this machine; infra checks need it")
    return Path(found)


def terraform_aws_mirror() -> Path:
    if not any(TF_MIRROR.glob("registry.terraform.io/hashicorp/aws/*/*")):
        pytest.skip(f"no offline provider mirror for hashicorp/aws at {TF_MIRROR}")
    return TF_MIRROR


def run(
    args: Sequence[str | Path],
    *,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a tool to completion and capture its output (stdout and stderr kept apart)."""
    return subprocess.run(
        [str(a) for a in args],
        cwd=str(cwd),
        env={**os.environ, **AWS_OFFLINE_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n" + (
        result.stderr[-6000:]
    )
