"""The Dockerfile, without a Docker engine: its final stage is read, and its entry command is run
here with the image's environment, then driven like Cloud Run drives it (PORT set, probes, a
chat completion through the openai SDK, SIGTERM on scale-down)."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.procs import free_port, spawn, stop, wait_http

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
EXAMPLE_CONFIG = REPO / "examples" / "config.yaml"


@dataclass
class Stage:
    base: str
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    copies: list[list[str]] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in joined]


def stages(text: str) -> list[Stage]:
    found: list[Stage] = []
    for op, args in instructions(text):
        if op == "FROM":
            found.append(Stage(base=args.split()[0]))
        elif op == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                found[-1].env[key] = value
        elif op == "USER":
            found[-1].user = args.strip()
        elif op == "COPY":
            found[-1].copies.append(shlex.split(args))
        elif op in ("ENTRYPOINT", "CMD"):
            setattr(found[-1], op.lower(), json.loads(args))
        elif op == "HEALTHCHECK":
            found[-1].healthcheck = json.loads(args[args.index("CMD") + 3:])
    return found


@pytest.fixture(scope="module")
def final() -> Stage:
    return stages(DOCKERFILE.read_text())[-1]


def test_image_is_slim_pinned_and_runs_as_a_numbered_non_root_user(final: Stage) -> None:
    all_stages = stages(DOCKERFILE.read_text())
    assert len(all_stages) >= 2, "a build stage keeps compilers and pip out of the image"
    for stage in all_stages:
        tag = stage.base.partition(":")[2]
        assert tag and tag != "latest" and "slim" in tag, stage.base
    assert final.user.isdigit() and final.user != "0"
    assert final.entrypoint[0] == "laneway", "the image runs the laneway CLI (uvicorn inside)"
    assert final.env["PORT"] == "8080" and final.env["HOST"] == "0.0.0.0"


def test_build_context_contains_what_the_build_copies_and_nothing_else() -> None:
    """.dockerignore is an allow-list; every COPY source must be in it (and exist)."""
    rules = [r.strip() for r in (REPO / ".dockerignore").read_text().splitlines()
             if r.strip() and not r.startswith("#")]
    assert rules[0] == "*", "start from nothing, then allow"

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negate
        return keep

    sources = [src for stage in stages(DOCKERFILE.read_text()) for copy in stage.copies
               if not any(a.startswith("--from") for a in copy) for src in copy[:-1]]
    assert sources, "the build stage copies the sources"
    for src in sources:
        assert (REPO / src).exists(), src
        assert included(src), f"{src} is copied but .dockerignore leaves it out"
    for private in (".git", ".tools", "tests", "build", "infra", ".env"):
        assert not included(private), f"{private} would be sent to the Docker daemon"


def test_entry_command_serves_like_cloud_run(final: Stage, tmp_path: Path) -> None:
    command = final.entrypoint + final.cmd
    executable = shutil.which(command[0]) or str(Path(sys.executable).with_name(command[0]))
    port = free_port()
    # The image's environment, with PATH left to this machine, HOST narrowed to loopback (tests
    # listen on no other interface) and PORT chosen as Cloud Run chooses it.
    env = {k: v for k, v in final.env.items() if k != "PATH"}
    env.update(HOST="127.0.0.1", PORT=str(port), CONFIG_FILE_PATH=str(EXAMPLE_CONFIG),
               LANEWAY_MASTER_KEY="sk-docker-test-key")
    proc = spawn([executable, *command[1:]], env=env, cwd=tmp_path)
    try:
        wait_http(f"http://127.0.0.1:{port}/health/readiness", proc, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/health/liveliness").status_code == 200

        probe = subprocess.run(final.healthcheck, env={**env, "PATH": str(Path(sys.executable)
                               .parent)}, capture_output=True, timeout=15, check=False)
        assert probe.returncode == 0, probe.stderr

        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1",
                               api_key="sk-docker-test-key", max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        assert (reply.choices[0].message.content or "").startswith("Hello from laneway")
        client.close()

        docs = httpx.get(f"http://127.0.0.1:{port}/docs")
        assert docs.status_code == 404, "NO_DOCS=True in the image hides the API docs"
    finally:
        output = stop(proc, signal.SIGTERM)
    # uvicorn finishes its shutdown, then re-raises the signal it caught, so the exit status
    # says "terminated by SIGTERM"; what matters is that shutdown completed.
    assert proc.returncode in (0, -signal.SIGTERM), output[-3000:]
    assert "Application shutdown complete" in output, output[-3000:]
    assert "sk-docker-test-key" not in output
