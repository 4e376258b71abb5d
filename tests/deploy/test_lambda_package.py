"""scripts/build-lambda.py: what goes into the Lambda package, and what must stay out."""

from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path

from tests.deploy import tools
from tests.deploy.conftest import LambdaPackage

UNZIPPED_LIMIT_MIB = 250


def test_build_reports_sizes_within_lambda_limits(lambda_package: LambdaPackage) -> None:
    match = re.search(r"([\d.]+) MiB zipped, ([\d.]+) MiB unzipped", lambda_package.build_output)
    assert match, lambda_package.build_output
    zipped, unzipped = float(match[1]), float(match[2])
    assert abs(zipped - lambda_package.zip_path.stat().st_size / 2**20) < 0.1
    assert unzipped < UNZIPPED_LIMIT_MIB
    # A guard against the package silently doubling (a test tool or an SDK pulled in).
    assert zipped < 40, f"package grew to {zipped} MiB"


def test_package_holds_laneway_and_its_runtime_dependencies(
    lambda_package: LambdaPackage,
) -> None:
    names = set(zipfile.ZipFile(lambda_package.zip_path).namelist())
    for required in ("handler/aws_lambda.py", "handler/app.py", "router/__init__.py",
                     "mangum/__init__.py", "fastapi/__init__.py", "httpx/__init__.py",
                     "pydantic/__init__.py", "yaml/__init__.py", "hiredis/__init__.py",
                     "httptools/__init__.py",
                     "orjson/__init__.py", "run.sh"):
        assert required in names, required
    lua = [n for n in names if n.startswith("router/") and n.endswith(".lua")]
    assert lua, "the Redis scripts are package data and must ship"
    assert {"handler/ui/static/index.html", "handler/ui/static/app.js"} <= names, "GET /ui"


def test_package_leaves_out_boto3_and_test_tools(lambda_package: LambdaPackage) -> None:
    tops = {n.split("/", 1)[0].split("-", 1)[0].lower()
            for n in zipfile.ZipFile(lambda_package.zip_path).namelist()}
    for absent in ("boto3", "botocore", "s3transfer", "pytest", "moto", "openai", "ruff",
                   "awslambdaric", "tests", "uvloop", "watchfiles"):
        assert absent not in tops, f"{absent} must not be in the Lambda package"


def test_run_sh_is_executable_and_starts_uvicorn(lambda_package: LambdaPackage) -> None:
    info = zipfile.ZipFile(lambda_package.zip_path).getinfo("run.sh")
    assert (info.external_attr >> 16) & stat.S_IXUSR, "the Web Adapter executes run.sh"
    script = (lambda_package.directory / "run.sh").read_text()
    assert "uvicorn handler.app:app" in script and "AWS_LWA_PORT" in script


def test_zip_is_reproducible(lambda_package: LambdaPackage, tmp_path: Path) -> None:
    """Same sources, same bytes: Terraform's source_code_hash only changes with the code."""
    again = tmp_path / "again.zip"
    result = tools.run(
        [tools.sys.executable, tools.REPO / "scripts" / "build-lambda.py", "--offline",
         "--arch", tools.host_arch(), "--python", tools.host_python(),
         "--deps-cache", tools.lambda_deps_cache(), "--out", tmp_path / "task", "--zip", again],
        timeout=180,
    )
    assert result.returncode == 0, tools.explain(result)
    assert again.read_bytes() == lambda_package.zip_path.read_bytes()


def test_offline_build_without_a_cache_says_what_to_do(tmp_path: Path) -> None:
    result = tools.run([tools.sys.executable, tools.REPO / "scripts" / "build-lambda.py",
                        "--offline", "--deps-cache", tmp_path / "nothing-here",
                        "--out", tmp_path / "task"])
    assert result.returncode != 0
    assert "no dependency cache" in result.stderr
