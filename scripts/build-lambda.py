#!/usr/bin/env python3
"""Build laneway's AWS Lambda package: runtime dependencies for the target CPU + laneway itself.

    python3 scripts/build-lambda.py --arch arm64   # build/lambda, build/laneway-lambda-arm64.zip
    python3 scripts/build-lambda.py --arch x86_64 --python 3.12

The dependencies are the `[project].dependencies` of pyproject.toml, installed as binary wheels
for the Lambda platform (manylinux, the chosen architecture and Python); test tools and boto3 stay
out (the Lambda Python runtime ships boto3). Installed dependencies are cached per platform, so a
rebuild after a code change only copies laneway's own packages; `--offline` insists on that cache.
The directory is what `sam build`/`sam deploy` take (template.yaml's CodeUri), the zip what
Terraform uploads. The script prints the package size and fails past Lambda's limits.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("router", "handler")
# Present in the Lambda runtime already; a copy in the package would only add cold-start weight.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# Parts of uvicorn[standard] that serve no purpose on Lambda: Mangum drives plain asyncio, the
# Web Adapter's uvicorn falls back to asyncio and h11 by itself, and there is neither code reload
# nor a websocket route. uvloop alone is a third of the package.
LAMBDA_UNUSED = ("uvloop", "watchfiles", "websockets")
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit for function code plus layers, unzipped
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # above this a zip must go through S3
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip

# The streaming function's handler: the Web Adapter layer (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap)
# runs this script and proxies Lambda events to the HTTP server it starts.
RUN_SH = """#!/bin/bash
# Entry point of the streaming function (Lambda Web Adapter): serve laneway with uvicorn.
# The package comes first; the runtime directory provides boto3 (for an s3:// config).
PYTHONPATH="${LAMBDA_TASK_ROOT:-/var/task}${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH="$PYTHONPATH:${LAMBDA_RUNTIME_DIR:-/var/runtime}"
exec python3 -m uvicorn handler.app:app --host 127.0.0.1 --port "${AWS_LWA_PORT:-${PORT:-8080}}" \\
  --no-server-header --no-access-log
"""


def runtime_requirements() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = [str(d) for d in project.get("dependencies", [])]
    offending = [d for d in deps if _req_name(d) in RUNTIME_PROVIDED]
    if offending:
        raise SystemExit(f"runtime dependencies must not include {offending}: Lambda ships them")
    return deps


def _req_name(requirement: str) -> str:
    name = requirement
    for sep in "[<>=!~; ":
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")


def platforms(arch: str) -> list[str]:
    machine = "aarch64" if arch == "arm64" else "x86_64"
    # Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34).
    return [f"manylinux_2_{v}_{machine}" for v in (34, 28, 17)] + [f"manylinux2014_{machine}"]


def install_dependencies(cache: Path, arch: str, python: str, offline: bool) -> None:
    requirements = runtime_requirements()
    stamp = {"requirements": requirements, "arch": arch, "python": python,
             "platforms": platforms(arch)}
    stamp_file = cache / ".laneway-deps.json"
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return
    if offline:
        raise SystemExit(f"no dependency cache for {arch}/py{python} at {cache} (run without "
                         "--offline, or scripts/install-deploy-tools.sh, once)")
    if cache.exists():
        shutil.rmtree(cache)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--no-warn-conflicts", "--root-user-action=ignore", "--no-compile",
           "--target", str(cache), "--implementation", "cp", "--python-version", python,
           "--only-binary=:all:"]
    for tag in platforms(arch):
        cmd += ["--platform", tag]
    print(f"== installing {len(requirements)} runtime dependencies for {arch}/py{python}")
    subprocess.run(cmd + requirements, check=True)
    for name in RUNTIME_PROVIDED:
        if (cache / name).exists():
            raise SystemExit(f"{name} was pulled in by a dependency; it must stay out")
    stamp_file.write_text(json.dumps(stamp))


def _ignore(_directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))}


def assemble(cache: Path, out: Path, arch: str, python: str) -> bool:
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(cache, out, ignore=lambda d, n: _ignore(d, n) | {".laneway-deps.json", "bin"})
    for unused in LAMBDA_UNUSED:
        for path in [out / unused, *out.glob(f"{unused}-*.dist-info")]:
            if path.exists():
                shutil.rmtree(path)
    for package in PACKAGES:
        shutil.copytree(REPO / package, out / package, ignore=_ignore)
    run_sh = out / "run.sh"
    run_sh.write_text(RUN_SH)
    run_sh.chmod(0o755)
    (out / "laneway-build.json").write_text(json.dumps({"arch": arch, "python": python}) + "\n")
    # /var/task is read-only, so Python cannot cache bytecode there: precompile when this
    # interpreter matches the target. Unchecked hashes stay valid whatever mtimes unzip gives;
    # recording /var/task as the source directory keeps the bytes independent of where the
    # build ran and makes tracebacks name the files where Lambda has them.
    if f"{sys.version_info[0]}.{sys.version_info[1]}" != python:
        return False
    compileall.compile_dir(out, quiet=1, workers=0, ddir="/var/task",
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return True


def write_zip(out: Path, zip_path: Path) -> None:
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(out).as_posix(), ZIP_EPOCH)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(zip_path)


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def report(out: Path, zip_path: Path, compiled: bool) -> dict[str, object]:
    unzipped, zipped = tree_size(out), zip_path.stat().st_size
    tops = sorted(((tree_size(p) if p.is_dir() else p.stat().st_size, p.name)
                   for p in out.iterdir()), reverse=True)[:8]
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    bytecode = "included" if compiled else "not included (this Python is not the target's)"
    print(f"== {zip_path}: {zipped / 2**20:.1f} MiB zipped, {unzipped / 2**20:.1f} MiB unzipped "
          f"(limit {UNZIPPED_LIMIT // 2**20} MiB), bytecode {bytecode}")
    print("   largest: " + ", ".join(f"{name} {size / 2**20:.1f} MiB" for size, name in tops))
    print(f"   sha256 {digest}")
    if unzipped > UNZIPPED_LIMIT:
        raise SystemExit("package exceeds Lambda's unzipped size limit")
    if zipped > DIRECT_UPLOAD_LIMIT:
        print("   note: above 50 MiB the zip must be uploaded through S3 (sam deploy does that)")
    return {"zip_bytes": zipped, "unzipped_bytes": unzipped, "sha256": digest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("arm64", "x86_64"), default="arm64")
    parser.add_argument("--python", default="3.12", help="target Python (Lambda runtime) version")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "lambda",
                        help="package directory (template.yaml's CodeUri)")
    parser.add_argument("--zip", type=Path, help="zip to write (default "
                        "build/laneway-lambda-<arch>.zip)")
    parser.add_argument("--deps-cache", type=Path, help="where installed dependencies are kept "
                        "(default build/.lambda-deps/<arch>-py<python>)")
    parser.add_argument("--offline", action="store_true",
                        help="fail instead of calling pip when the dependency cache is missing")
    parser.add_argument("--deps-only", action="store_true",
                        help="fill the dependency cache and stop")
    args = parser.parse_args(argv)

    cache = args.deps_cache or REPO / "build" / ".lambda-deps" / f"{args.arch}-py{args.python}"
    install_dependencies(cache, args.arch, args.python, args.offline)
    if args.deps_only:
        print(f"== dependency cache ready: {cache}")
        return 0
    zip_path = args.zip or REPO / "build" / f"laneway-lambda-{args.arch}.zip"
    compiled = assemble(cache, args.out, args.arch, args.python)
    write_zip(args.out, zip_path)
    report(args.out, zip_path, compiled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
