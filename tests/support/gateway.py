"""Start real laneway gateway processes (the `laneway` command under uvicorn) for tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.procs import PYTHON, free_port, spawn, stop, wait_http


@dataclass
class Gateway:
    port: int
    proc: subprocess.Popen[bytes]
    config_path: Path
    key: str | None = None
    output: str = field(default="")
    secrets: tuple[str, ...] = ()
    """Values that must never show in the gateway's output; checked on every stop, so the
    whole test suite doubles as a scan for leaked keys."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key}"} if self.key else {}

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=30, **kw)

    def openai(self, **kw: Any) -> Any:
        import openai

        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=self.key or "unused",
                             max_retries=0, **kw)

    def async_openai(self, **kw: Any) -> Any:
        import openai

        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=self.key or "unused",
                                  max_retries=0, **kw)

    def stop(self, sig: int = signal.SIGTERM) -> str:
        self.output += stop(self.proc, sig)
        leaked = [f"{s[:3]}…" for s in self.secrets if s in self.output]
        assert not leaked, f"secrets in the gateway's output: {leaked}"
        return self.output

    def kill(self) -> str:
        return self.stop(signal.SIGKILL)


_SECRET_NAME = re.compile(r"(?i)(key|secret|password|token)")


def secrets_of(config: Any, env: dict[str, str] | None, key: str | None) -> tuple[str, ...]:
    """Credential values in a config and an environment (long enough to be real keys)."""
    found = [key or ""]
    found += [v for k, v in (env or {}).items() if _SECRET_NAME.search(k)]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if isinstance(v, str) and _SECRET_NAME.search(str(k)) and (
                        not v.startswith("os.environ/")):
                    found.append(v)
                walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return tuple(sorted({s for s in found if len(s) >= 8}))


def write_config(config: dict[str, Any] | str, directory: str | None = None) -> Path:
    d = Path(directory or tempfile.mkdtemp(prefix="laneway-cfg-"))
    path = d / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return path


def start_gateway(
    config: dict[str, Any] | str,
    env: dict[str, str] | None = None,
    *,
    key: str | None = None,
    args: tuple[str, ...] = (),
) -> Gateway:
    port = free_port()
    path = write_config(config)
    full_env = {"LANEWAY_LOG_LEVEL": "INFO", **(env or {})}
    for name in ("CONFIG_FILE_PATH", "LANEWAY_CONFIG", "LITELLM_CONFIG_BUCKET_NAME"):
        if name not in full_env:
            full_env[name] = ""
    # A config named by the environment is used as it is; otherwise pass the written file.
    source = [] if full_env["CONFIG_FILE_PATH"] or full_env["LANEWAY_CONFIG"] else [
        "--config", str(path)]
    proc = spawn([PYTHON, "-m", "handler.cli", *source, "--host", "127.0.0.1",
                  "--port", str(port), *args], full_env)
    gw = Gateway(port, proc, path, key, secrets=secrets_of(config, env, key))
    try:
        wait_http(f"{gw.url}/health/liveliness", proc, timeout=30)
    except Exception:
        gw.stop()
        raise RuntimeError(f"gateway did not start:\n{gw.output[-4000:]}") from None
    return gw


def clean_env() -> dict[str, str]:
    """The test process environment without variables that would change a gateway's config."""
    drop = {"REDIS_URL", "REDIS_HOST", "LITELLM_MASTER_KEY", "LANEWAY_MASTER_KEY",
            "LITELLM_ENVIRONMENT", "LANEWAY_ENVIRONMENT", "NO_DOCS"}
    return {k: v for k, v in os.environ.items() if k not in drop}
