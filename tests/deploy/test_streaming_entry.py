"""run.sh, the streaming function's handler: what the Lambda Web Adapter starts and proxies to.

It is run here as the adapter runs it (LAMBDA_TASK_ROOT, LAMBDA_RUNTIME_DIR and AWS_LWA_PORT set)
with a `python3` that, like the runtime's, sees no site-packages of this machine, and a streamed
chat completion must arrive chunk by chunk through the openai SDK.
"""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import openai

from tests.deploy import tools
from tests.deploy.conftest import LambdaPackage
from tests.support.procs import free_port, spawn, stop, wait_http


def test_run_sh_serves_streaming_chat_from_the_package(
    lambda_package: LambdaPackage, lambda_runtime_dir: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python3 = bin_dir / "python3"
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    python3.chmod(0o755)
    config = tmp_path / "config.yaml"
    shutil.copy(tools.REPO / "examples" / "config.yaml", config)
    port = free_port()
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(lambda_package.directory),
           "LAMBDA_RUNTIME_DIR": str(lambda_runtime_dir), "AWS_LWA_PORT": str(port),
           "PORT": "1", "CONFIG_FILE_PATH": str(config), "LANEWAY_MASTER_KEY": "sk-stream-key",
           "PYTHONPATH": ""}
    proc = spawn(["/bin/bash", str(lambda_package.directory / "run.sh")], env=env,
                 cwd=lambda_package.directory)
    try:
        wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=30)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-stream-key",
                               max_retries=0)
        chunks = list(client.chat.completions.create(
            model="gpt-4o-mini", stream=True,
            messages=[{"role": "user", "content": "hello"}]))
        client.close()
    finally:
        output = stop(proc, signal.SIGTERM)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello from laneway"), output[-3000:]
    assert len(chunks) > 2, "a stream arrives in pieces, not as one body"
    assert "sk-stream-key" not in output
