"""Run a built Lambda package the way Lambda runs it: the Runtime Interface Emulator (RIE) starts
`python -m awslambdaric handler.aws_lambda.handler` in the package directory and turns each
`POST /2015-03-31/functions/function/invocations` into one invocation.

Python starts with -S, so this machine's site-packages are invisible: the function sees only its
package (/var/task) and a stand-in for what the Lambda Python runtime itself provides (boto3 and
its dependencies, the runtime interface client). A dependency missing from the package therefore
fails here as it would on Lambda.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.metadata
import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.procs import PYTHON, free_port, spawn, stop, wait_port

# Distributions the Lambda Python runtime ships in /var/runtime (boto3 and the runtime client).
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six",
                         "urllib3", "awslambdaric", "simplejson", "snapshot-restore-py")


def build_runtime_dir(target: Path) -> Path:
    """Link the top-level modules of RUNTIME_DISTRIBUTIONS into `target` (a fake /var/runtime)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_DISTRIBUTIONS:
        dist = importlib.metadata.distribution(name)
        for file in dist.files or []:
            top = file.parts[0]
            if top.endswith((".dist-info", ".data")) or top in ("..", "bin", "__pycache__"):
                continue
            source, link = Path(str(dist.locate_file(top))), target / top
            if source.exists() and not link.exists():
                link.symlink_to(source)
    return target


@dataclass
class Invocation:
    """What the function returned for one event."""

    raw: dict[str, Any]

    @property
    def status(self) -> int:
        return int(self.raw["statusCode"])

    @property
    def body(self) -> bytes:
        body = self.raw.get("body") or ""
        return base64.b64decode(body) if self.raw.get("isBase64Encoded") else body.encode()

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in (self.raw.get("headers") or {}).items():
            if key.lower() == name.lower():
                return str(value)
        for key, values in (self.raw.get("multiValueHeaders") or {}).items():
            if key.lower() == name.lower():
                return str(values[0])
        return None


@dataclass
class EmulatedFunction:
    url: str
    process: subprocess.Popen[bytes]
    client: httpx.Client

    def invoke(self, event: Mapping[str, Any], timeout: float = 60.0) -> Invocation:
        response = self.client.post(self.url, json=dict(event), timeout=timeout)
        assert response.status_code == 200, f"RIE answered {response.status_code}: {response.text}"
        payload = response.json()
        assert isinstance(payload, dict) and "statusCode" in payload, (
            f"the function failed instead of answering: {payload}")
        return Invocation(payload)


@contextlib.contextmanager
def emulate(
    rie: Path, task_root: Path, runtime_dir: Path, env: Mapping[str, str]
) -> Iterator[EmulatedFunction]:
    """One emulated function (one warm container) for the duration of the block."""
    api_port, rie_port = free_port(), free_port()
    function_env = {
        "PYTHONPATH": f"{task_root}:{runtime_dir}",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_LAMBDA_FUNCTION_NAME": "laneway",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "60",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LOG_LEVEL": "warn",  # the emulator's own chatter
        **env,
    }
    # Both addresses are given: the emulator listens on 0.0.0.0:8080 and 127.0.0.1:9001 unless
    # told otherwise, and tests listen on loopback ports of their own choosing only.
    process = spawn([str(rie), "--runtime-interface-emulator-address", f"127.0.0.1:{rie_port}",
                     "--runtime-api-address", f"127.0.0.1:{api_port}",
                     PYTHON, "-S", "-m", "awslambdaric", "handler.aws_lambda.handler"],
                    env=function_env, cwd=task_root)
    client = httpx.Client()
    try:
        wait_port(rie_port, process)
        yield EmulatedFunction(
            url=f"http://127.0.0.1:{rie_port}/2015-03-31/functions/function/invocations",
            process=process, client=client)
    finally:
        client.close()
        output = stop(process)
        # laneway's own keys (master key, provider keys) must never reach the logs.
        for secret in (v for k, v in env.items()
                       if k.endswith("_KEY") and not k.startswith("AWS_") and v):
            assert secret not in output, f"{secret!r} showed up in the function's logs"
