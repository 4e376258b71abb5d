"""What a request costs the gateway and Redis, in instructions: figures that do not move with
the machine.

    python bench/instructions.py [--requests 200] [--gateway]
    python bench/instructions.py --apis [--requests 200]

A shared VM's timings wander by more than the differences worth measuring (a virtual key's
share of a request is tens of microseconds); an instruction count repeats to about 1 %. This
runs redis-server (and with --gateway the gateway too) under valgrind's callgrind and sends the
same chat request one at a time with the master key and then with a virtual key whose limits
are all set (none reached), zeroing and dumping callgrind's counters around each phase:
everything each process did for those requests (admission, release, renewals, the HTTP
exchanges), divided by their number.

Needs valgrind (Debian package `valgrind`). Slow by nature (~50x under callgrind): Redis alone
takes about half a minute, with the gateway (whose start alone takes a minute) about four.
With --apis it counts the gateway alone (in-process state) for the same request on
/v1/chat/completions, /v1/responses and /v1/messages, streamed and not: what translating to and
from chat costs, in a figure that holds still where the c=32 latencies do not.
LANEWAY_KEEP_CALLGRIND=1 keeps the dumps (one per phase, master key first) for
callgrind_annotate.
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
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import BODY, MASTER, gateway_for  # noqa: E402

from tests.support.fake_openai import start_fake_openai  # noqa: E402
from tests.support.gateway import write_config  # noqa: E402
from tests.support.procs import PYTHON, free_port, spawn, wait_http  # noqa: E402

KEY_LIMITS = {"rpm_limit": 10**8, "tpm_limit": 10**10, "max_parallel_requests": 10**4,
              "max_budget": 10**6}


def _instructions(dump: str) -> int:
    for line in Path(dump).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dump}")


def _callgrind(out_dir: str) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.out"]


class Counted:
    """A process under callgrind whose counters are read phase by phase."""

    def __init__(self, proc: subprocess.Popen[bytes], directory: str) -> None:
        self.proc = proc
        self.dir = directory

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], check=True,
                       capture_output=True)

    def zero(self) -> None:
        self._before = set(glob.glob(f"{self.dir}/cg.out*"))
        self._control("-z")

    def dump(self) -> int:
        """Instructions since `zero`."""
        before = self._before
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
        if os.environ.get("LANEWAY_KEEP_CALLGRIND"):  # to read with callgrind_annotate
            print(f"callgrind dumps kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _redis() -> tuple[Counted, str]:
    import redis

    directory, port = tempfile.mkdtemp(prefix="laneway-cg-"), free_port()
    proc = subprocess.Popen(
        [*_callgrind(directory), "redis-server", "--port", str(port), "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            redis.Redis(port=port).ping()
            return Counted(proc, directory), f"redis://127.0.0.1:{port}"
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _gateway(upstream: str, redis_url: str) -> tuple[Counted, str]:
    """The bench's gateway, under callgrind when asked (started by hand: its start takes far
    longer than start_gateway waits)."""
    return _counted_gateway({
        "model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/bench", "api_base": upstream, "api_key": "k"}}],
        "router_settings": {"num_retries": 0, "redis_url": redis_url},
        "general_settings": {"master_key": MASTER},
    })


def _counted_gateway(config: dict[str, Any]) -> tuple[Counted, str]:
    directory, port = tempfile.mkdtemp(prefix="laneway-cg-"), free_port()
    proc = spawn([*_callgrind(directory), PYTHON, "-m", "handler.cli", "--config",
                  str(write_config(config)), "--host", "127.0.0.1", "--port", str(port)],
                 {"LANEWAY_LOG_LEVEL": "WARNING", "CONFIG_FILE_PATH": "", "LANEWAY_CONFIG": "",
                  "LITELLM_CONFIG_BUCKET_NAME": ""})
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=600)
    return Counted(proc, directory), f"http://127.0.0.1:{port}"


def apis(n: int) -> None:
    """Instructions per request of /v1/responses and /v1/messages over chat completions: the
    gateway (in-process state) under callgrind in front of the fake OpenAI upstream, each
    route's requests sent one at a time, streamed and not."""
    from bench.apis_cpu import ROUTES, apis_config

    with start_fake_openai() as up:
        config = apis_config(up.url)
        config["general_settings"]["master_key"] = MASTER
        gw, url = _counted_gateway(config)
        try:
            with httpx.Client(base_url=url, timeout=60,
                              headers={"authorization": f"Bearer {MASTER}"}) as c:
                for stream in (False, True):
                    counts: dict[str, float] = {}
                    for path, body in ROUTES.items():
                        request = {**body, "stream": stream}
                        for _ in range(max(n // 4, 10)):  # warm: imports, caches, the store
                            c.post(path, json=request).raise_for_status()
                        gw.zero()
                        for _ in range(n):
                            c.post(path, json=request).raise_for_status()
                        counts[path] = gw.dump() / n
                    chat = counts["/v1/chat/completions"]
                    print(f"stream={stream}: " + ", ".join(
                        f"{p} {v / 1e3:,.0f}k" + ("" if p.endswith("completions") else
                                                  f" ({(v - chat) / 1e3:+,.0f}k, "
                                                  f"{(v - chat) / chat:+.1%})")
                        for p, v in counts.items()))
        finally:
            gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--gateway", action="store_true",
                        help="count the gateway's instructions too")
    parser.add_argument("--apis", action="store_true",
                        help="instead: the gateway's instructions per request of /v1/responses "
                             "and /v1/messages over chat completions")
    args = parser.parse_args()
    n = args.requests
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install -y valgrind)")
    if args.apis:
        apis(n)
        return
    redis_server, redis_url = _redis()
    counted: dict[str, Counted] = {"Redis": redis_server}
    try:
        with start_fake_openai() as up:
            if args.gateway:
                gw, url = _gateway(up.url, redis_url)
                counted["gateway"] = gw
                stop = gw.stop
            else:
                plain = gateway_for(up.url, {"redis_url": redis_url}, master=True)
                url, stop = plain.url, plain.stop
            try:
                figures = _phases(url, n, counted)
            finally:
                stop()
    finally:
        redis_server.stop()
    for name, (master, virtual) in figures.items():
        print(f"{name} instructions per request ({n} sequential requests, callgrind): master "
              f"key {master:,.0f}, virtual key (all limits) {virtual:,.0f}, the key's share "
              f"{virtual - master:+,.0f} ({(virtual - master) / master:+.0%})")


def _phases(url: str, n: int, counted: dict[str, Counted]) -> dict[str, tuple[float, float]]:
    with httpx.Client(timeout=60) as c:
        key = c.post(f"{url}/key/generate", json=KEY_LIMITS,
                     headers={"authorization": f"Bearer {MASTER}"}).json()["key"]

        def send(who: str) -> None:
            for _ in range(n):
                c.post(f"{url}/v1/chat/completions", json=BODY,
                       headers={"authorization": f"Bearer {who}"}).raise_for_status()
            time.sleep(1)  # releases sent in the background land in this phase

        send(MASTER)
        send(key)  # warm: scripts loaded, windows and records in place
        out: dict[str, list[float]] = {name: [] for name in counted}
        for who in (MASTER, key):
            for p in counted.values():
                p.zero()
            send(who)
            for name, p in counted.items():
                out[name].append(p.dump() / n)
    return {name: (v[0], v[1]) for name, v in out.items()}


if __name__ == "__main__":
    os.environ.setdefault("LANEWAY_LOG_LEVEL", "WARNING")
    main()
