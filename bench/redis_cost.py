"""What a request costs Redis, in instructions: a figure that does not move with the machine.

    python bench/redis_cost.py [--requests 300]

A shared VM's timings wander by more than the differences worth measuring (a virtual key's
share of a request is tens of microseconds); an instruction count does not. This runs
redis-server under valgrind's callgrind, one gateway on it, and sends the same chat request
one at a time with the master key and then with a virtual key whose limits are all set (none
reached), zeroing and dumping callgrind's counters around each phase: everything Redis does
for those requests (admission, release, renewals) divided by their number.

Needs valgrind (Debian package `valgrind`). Slow by nature (Redis runs ~50x slower under
callgrind): a few hundred requests per phase take about a minute.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import BODY, MASTER, gateway_for  # noqa: E402

from tests.support.fake_openai import start_fake_openai  # noqa: E402
from tests.support.procs import free_port  # noqa: E402

KEY_LIMITS = {"rpm_limit": 10**8, "tpm_limit": 10**10, "max_parallel_requests": 10**4,
              "max_budget": 10**6}


def _instructions(dump: str) -> int:
    for line in Path(dump).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


class CallgrindRedis:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="laneway-cg-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.dir}/cg.out",
             "redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        deadline = time.monotonic() + 60
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], check=True,
                       capture_output=True)

    def phase(self, run: object) -> int:
        """Instructions Redis spent while `run()` ran."""
        before = set(glob.glob(f"{self.dir}/cg.out*"))
        self._control("-z")
        run()  # type: ignore[operator]
        self._control("-d")
        deadline = time.monotonic() + 30
        while not (new := set(glob.glob(f"{self.dir}/cg.out*")) - before):
            if time.monotonic() > deadline:
                raise RuntimeError("callgrind wrote no dump")
            time.sleep(0.1)
        time.sleep(0.5)  # the dump is complete once written; give it a moment to close
        return _instructions(new.pop())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    n = parser.parse_args().requests
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    redis_server = CallgrindRedis()
    try:
        with start_fake_openai() as up:
            # Redis under callgrind answers in milliseconds, not microseconds.
            gw = gateway_for(up.url, {"redis_url": redis_server.url}, master=True)
            try:
                url = f"{gw.url}/v1/chat/completions"
                with httpx.Client(timeout=30) as c:
                    key = c.post(f"{gw.url}/key/generate", json=KEY_LIMITS,
                                 headers={"authorization": f"Bearer {MASTER}"}).json()["key"]

                    def send(who: str) -> None:
                        for _ in range(n):
                            r = c.post(url, json=BODY, headers={"authorization": f"Bearer {who}"})
                            r.raise_for_status()
                        time.sleep(1)  # releases sent in the background land in this phase

                    send(MASTER)
                    send(key)  # warm: scripts loaded, windows and records in place
                    master = redis_server.phase(lambda: send(MASTER)) / n
                    virtual = redis_server.phase(lambda: send(key)) / n
            finally:
                gw.stop()
    finally:
        redis_server.stop()
    print(f"Redis instructions per request ({n} sequential requests, callgrind): master key "
          f"{master:,.0f}, virtual key (all limits) {virtual:,.0f}, "
          f"the key's share {virtual - master:+,.0f} ({(virtual - master) / master:+.0%})")


if __name__ == "__main__":
    os.environ.setdefault("LANEWAY_LOG_LEVEL", "WARNING")
    main()
