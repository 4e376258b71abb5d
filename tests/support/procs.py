"""Start real processes for tests: free ports, waiting until they listen, clean shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(
    port: int, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = output(proc)
            raise RuntimeError(f"process exited with {proc.returncode}:\n{out[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def spawn(
    args: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in its own group with stdout+stderr captured together.

    Output goes to a temporary file, not a pipe: a chatty process must never block on a full
    pipe that nobody reads. `output(proc)` and `stop(proc)` return what it printed."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
    proc = subprocess.Popen(
        list(args),
        env=full_env,
        cwd=str(cwd or REPO),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _LOGS[proc.pid] = log
    return proc


_LOGS: dict[int, IO[bytes]] = {}


def output(proc: subprocess.Popen[bytes]) -> str:
    """Everything the process printed so far."""
    log = _LOGS.get(proc.pid)
    if log is None or log.closed:
        return ""
    log.seek(0)
    return log.read().decode(errors="replace")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 5.0) -> str:
    """Stop a process group and return what it printed."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    out = output(proc)
    log = _LOGS.pop(proc.pid, None)
    if log is not None:
        log.close()
    return out


@contextlib.contextmanager
def running(
    args: Sequence[str], *, port: int, env: dict[str, str] | None = None, health: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    proc = spawn(args, env)
    try:
        if health:
            wait_http(f"http://127.0.0.1:{port}{health}", proc)
        else:
            wait_port(port, proc)
        yield proc
    finally:
        stop(proc)


PYTHON = sys.executable
