"""Session fixtures of the deploy checks: one Lambda package built from this checkout, and one
stand-in for the Lambda runtime's own modules, shared by the package and emulator tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy import tools
from tests.deploy.lambda_runtime import build_runtime_dir


@dataclass(frozen=True)
class LambdaPackage:
    directory: Path  # unpacked, as Lambda mounts it at /var/task
    zip_path: Path
    build_output: str


@pytest.fixture(scope="session")
def lambda_package(tmp_path_factory: pytest.TempPathFactory) -> LambdaPackage:
    """scripts/build-lambda.py, offline, for this machine's CPU and Python (so it can run here)."""
    cache = tools.lambda_deps_cache()
    work = tmp_path_factory.mktemp("lambda-package")
    result = tools.run(
        [tools.sys.executable, tools.REPO / "scripts" / "build-lambda.py", "--offline",
         "--arch", tools.host_arch(), "--python", tools.host_python(), "--deps-cache", cache,
         "--out", work / "task", "--zip", work / "laneway-lambda.zip"],
        timeout=180,
    )
    assert result.returncode == 0, tools.explain(result)
    return LambdaPackage(work / "task", work / "laneway-lambda.zip", result.stdout)


@pytest.fixture(scope="session")
def lambda_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_runtime_dir(tmp_path_factory.mktemp("var-runtime"))
