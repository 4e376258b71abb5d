"""A real redis-server on a free loopback port, owned by the test session."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from tests.support.procs import free_port, spawn, stop, wait_port


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run the README's test command")
        self.workdir = self.workdir or tempfile.mkdtemp(prefix="laneway-redis-")
        self.proc = spawn(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir, "--protected-mode", "no"]
        )
        wait_port(self.port, self.proc)

    def kill(self) -> None:
        """Stop the server abruptly (kill -9), as a crash would."""
        if self.proc is not None:
            import signal

            stop(self.proc, sig=signal.SIGKILL)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def start_redis() -> RedisServer:
    server = RedisServer(port=free_port())
    server.start()
    return server
