"""laneway benchmarks: added latency, throughput, cold start, Redis round trips, lane dispatch.

    python bench/run.py                 # everything, results printed as Markdown tables
    python bench/run.py --only overhead --seconds 3
    python bench/run.py --only load     # 4 gateways x 1,000 waiting requests (not in "all")
    python bench/run.py --only soak     # ~10 minutes of mixed traffic (not in "all")

Load comes from `wrk` (Debian package `wrk`) when installed, else from a Python client (which
saturates sooner, so its numbers are a lower bound). The gateway runs one worker pinned to CPU 0
and `wrk` to CPU 1; the fake upstream is not pinned and competes with both.
Numbers are for this machine only; compare runs, not machines.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.fake_openai import start_fake_openai  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402
from tests.support.redis_server import start_redis  # noqa: E402

BODY = {"model": "bench", "messages": [{"role": "user", "content": "hello there"}]}


def pin(pid: int, cpu: int) -> None:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), str(pid)],
                       capture_output=True, check=False)


def wrk(url: str, body: dict[str, Any], conns: int, seconds: float) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{json.dumps(body)}]]\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("JSON {\\"rps\\": %f, \\"p50\\": %f, \\"p99\\": %f, '
        '\\"errors\\": %d}\\n", summary.requests / (summary.duration / 1e6), '
        "latency:percentile(50) / 1000, latency:percentile(99) / 1000, "
        "summary.errors.status + summary.errors.connect + summary.errors.timeout))\n"
        "end\n"
    )
    cmd = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    out = subprocess.run(
        [*cmd, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("JSON "))
    return json.loads(line[5:])


def pyload(url: str, body: dict[str, Any], conns: int, seconds: float) -> dict[str, float]:
    import asyncio

    async def run() -> dict[str, float]:
        lat: list[float] = []
        errors = 0
        end = time.perf_counter() + seconds
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns)) as c:
            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    r = await c.post(url, json=body)
                    lat.append((time.perf_counter() - t) * 1000)
                    errors += r.status_code != 200

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conns)))
            took = time.perf_counter() - started
        lat.sort()
        return {"rps": len(lat) / took, "p50": lat[len(lat) // 2],
                "p99": lat[int(len(lat) * 0.99) - 1], "errors": errors}

    return asyncio.run(run())


def load(url: str, body: dict[str, Any], conns: int, seconds: float) -> dict[str, float]:
    return (wrk if shutil.which("wrk") else pyload)(url, body, conns, seconds)


def gateway_for(upstream_url: str, extra_router: dict[str, Any] | None = None,
                deployment: dict[str, Any] | None = None) -> Any:
    config = {
        "model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/bench", "api_base": upstream_url, "api_key": "k",
            **(deployment or {})}}],
        "router_settings": {"num_retries": 0, **(extra_router or {})},
    }
    gw = start_gateway(config, {"LANEWAY_LOG_LEVEL": "WARNING"})
    pin(gw.proc.pid, 0)
    return gw


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_overhead(seconds: float) -> None:
    print("\n## Added latency and throughput (one gateway worker, in-process state)\n")
    print("| stream | conc | direct req/s | laneway req/s | direct p50/p99 ms | "
          "laneway p50/p99 ms | added p50/p99 ms |")
    print("|---|---|---|---|---|---|---|")
    with start_fake_openai() as up:
        gw = gateway_for(up.url)
        try:
            # Warm up both sides first: the first requests open connections and load code.
            load(f"{up.url}/chat/completions", BODY, 8, 2)
            load(f"{gw.url}/v1/chat/completions", BODY, 8, 2)
            for stream in (False, True):
                body = {**BODY, "stream": stream}
                direct_body = {**body, "model": "bench"}
                for conns in (1, 8, 32, 128):
                    d = load(f"{up.url}/chat/completions", direct_body, conns, seconds)
                    g = load(f"{gw.url}/v1/chat/completions", body, conns, seconds)
                    print(f"| {stream} | {conns} | {d['rps']:.0f} | {g['rps']:.0f} | "
                          f"{d['p50']:.2f}/{d['p99']:.2f} | {g['p50']:.2f}/{g['p99']:.2f} | "
                          f"{g['p50'] - d['p50']:.2f}/{g['p99'] - d['p99']:.2f} |")
            print(f"\nGateway peak RSS: {peak_rss_mb(gw.proc.pid):.0f} MB")
        finally:
            gw.stop()


def bench_cold_start(pythons: list[str]) -> None:
    print("\n## Cold start\n")
    # What Lambda runs: the package scripts/build-lambda.py ships (dependencies and laneway with
    # precompiled bytecode, nothing else on the path), built for this machine's CPU and Python,
    # imported with the function name set (metrics as EMF lines, no Prometheus registry).
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    package = REPO / "build" / "bench" / f"lambda-{arch}-py{version}"
    subprocess.run([sys.executable, str(REPO / "scripts/build-lambda.py"), "--arch", arch,
                    "--python", version, "--out", str(package),
                    "--zip", str(package.with_suffix(".zip"))],
                   check=True, stdout=subprocess.DEVNULL)
    env = {**os.environ, "CONFIG_FILE_PATH": str(REPO / "examples/config.yaml"),
           "LANEWAY_LOG_LEVEL": "WARNING", "AWS_LAMBDA_FUNCTION_NAME": "laneway-bench"}
    probes = {
        "import handler.aws_lambda": "import handler.aws_lambda",
        "import fastapi, mangum (the framework alone)": "import fastapi, mangum",
    }
    # -S keeps the interpreter's own site-packages (this venv's) off the path.
    code = ("import sys; sys.path.insert(0, {path!r}); import time; t = time.perf_counter(); "
            "{stmt}; print(time.perf_counter() - t); "
            "print(int('boto3' in sys.modules), int('botocore' in sys.modules))")
    pinned = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    for python in pythons:
        print(f"{python} ({_interpreter_version(python)}):")
        runs: dict[str, list[float]] = {name: [] for name in probes}
        for _ in range(15):  # interleaved, so a noisy neighbour slows both alike
            for name, stmt in probes.items():
                out = subprocess.run([*pinned, python, "-S", "-c",
                                      code.format(path=str(package), stmt=stmt)],
                                     env=env, capture_output=True, text=True,
                                     check=True).stdout.split()
                runs[name].append(float(out[0]))
                if stmt.startswith("import handler"):
                    boto = out[1:]
        for name, times in runs.items():
            print(f"- {name}: median {statistics.median(times) * 1000:.0f} ms, "
                  f"fastest {min(times) * 1000:.0f} ms over {len(times)} runs")
        print(f"- boto3 imported: {'yes' if boto[0] == '1' else 'no'}, "
              f"botocore imported: {'yes' if boto[1] == '1' else 'no'}")


def _interpreter_version(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def cold_start_pythons() -> list[str]:
    """This interpreter, and the system's build of the same Python version when there is one:
    the package's bytecode and extensions fit any build of one minor version, and builds differ
    (python.org's, distributions' and the official images' are optimised with PGO and LTO; a
    plain source build, pyenv's default, is not)."""
    pythons = [sys.executable]
    system = Path(f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}")
    if system.is_file() and system.resolve() != Path(sys.executable).resolve():
        pythons.append(str(system))
    return pythons


def _evalsha_calls(url: str) -> int:
    import redis

    r = redis.Redis.from_url(url)
    stats = r.info("commandstats")
    r.close()
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval",
                                                             "cmdstat_ping"))


def bench_redis(seconds: float) -> None:
    print("\n## Redis backend vs in-process state\n")
    print("| state | conc | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    redis_server = start_redis()
    try:
        with start_fake_openai() as up:
            for name, extra in (("memory", {}), ("redis", {"redis_url": redis_server.url})):
                gw = gateway_for(up.url, extra)
                try:
                    load(f"{gw.url}/v1/chat/completions", BODY, 8, 2)  # warm-up
                    for conns in (1, 32):
                        g = load(f"{gw.url}/v1/chat/completions", BODY, conns, seconds)
                        print(f"| {name} | {conns} | {g['rps']:.0f} | {g['p50']:.2f} | "
                              f"{g['p99']:.2f} |")
                    if name == "redis":
                        before = _evalsha_calls(redis_server.url)
                        with httpx.Client() as c:
                            for _ in range(200):
                                c.post(f"{gw.url}/v1/chat/completions", json=BODY)
                        trips = (_evalsha_calls(redis_server.url) - before) / 200
                        print(f"\nRedis round trips per request (happy path): {trips:.2f}")
                finally:
                    gw.stop()
    finally:
        redis_server.stop()


class _ScriptLog:
    """Redis MONITOR in a thread: when each state script ran, by Redis' own clock."""

    def __init__(self, url: str) -> None:
        import hashlib

        import redis

        from router.state.scripts import script_source

        self._redis = redis.Redis.from_url(url)
        self._sha = {hashlib.sha1(script_source(f"{n}.lua").encode()).hexdigest(): n
                     for n in ("admit", "release")}
        self.calls: list[tuple[float, str]] = []

    def __enter__(self) -> _ScriptLog:
        import threading

        self._monitor = self._redis.monitor().__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            for event in self._monitor.listen():
                parts = event["command"].split(" ")
                if parts[0] == "EVALSHA" and parts[1] in self._sha:
                    self.calls.append((event["time"], self._sha[parts[1]]))
        except Exception:  # the monitor connection was closed: done
            return

    def __exit__(self, *exc: object) -> None:
        self._monitor.connection.disconnect()
        self._thread.join(5)

    def handovers(self) -> list[float]:
        """Milliseconds from each release to the admission right after it, past the first
        tenth (when every request is still arriving)."""
        out = []
        for (t1, a), (t2, b) in itertools.pairwise(self.calls[len(self.calls) // 10:]):
            if a == "release" and b == "admit":
                out.append((t2 - t1) * 1000)
        return sorted(out)


def bench_lanes(seconds: float) -> None:
    import asyncio

    print("\n## Priority lanes (3 gateways, one Redis, saturated limit)\n")
    redis_server = start_redis()
    try:
        with start_fake_openai() as up:
            cfg = {"model_list": [{"model_name": "bench", "litellm_params": {
                "model": "openai/bench+delay=0.01", "api_base": up.url, "api_key": "k",
                "max_parallel_requests": 1}}],
                "router_settings": {"redis_url": redis_server.url, "num_retries": 0}}
            gws = [start_gateway(cfg, {"LANEWAY_LOG_LEVEL": "WARNING"}) for _ in range(3)]
            try:
                up.clear()
                before = _evalsha_calls(redis_server.url)
                n = 400

                async def fire() -> None:
                    async with httpx.AsyncClient(timeout=60) as c:
                        await asyncio.gather(*(c.post(f"{gws[i % 3].url}/v1/chat/completions",
                                                      json=BODY) for i in range(n)))

                with _ScriptLog(redis_server.url) as script_log:
                    asyncio.run(fire())
                calls = (_evalsha_calls(redis_server.url) - before) / n
                taken = script_log.handovers()
                print(f"Slot hand-over inside Redis (a release → the next admission, which is the "
                      f"woken head's): p50 {taken[len(taken) // 2]:.2f} ms, "
                      f"p99 {taken[int(len(taken) * 0.99) - 1]:.2f} ms over {len(taken)}")
                served = sorted(up.requests(), key=lambda r: r["t"])
                # One call at a time: the next arrival follows the previous answer. The gap is
                # the gateway reading that answer, releasing the slot (one round trip), the
                # wake-up, the waiter's admission (one round trip) and its upstream request.
                gaps = sorted((b["t"] - a["done"]) * 1000 for a, b in itertools.pairwise(served))
                print(f"Dispatch delay (previous answer sent → next waiter's request reaches the "
                      f"upstream): p50 {gaps[len(gaps) // 2]:.2f} ms, "
                      f"p99 {gaps[int(len(gaps) * 0.99) - 1]:.2f} ms over {len(gaps)} hand-overs")
                print(f"Redis scripts per queued request: {calls:.2f}")

                # Throughput of admitted requests at a saturated parallel limit of 8.
                cfg["model_list"][0]["litellm_params"].update(
                    model="openai/bench", max_parallel_requests=8)
            finally:
                for gw in gws:
                    gw.stop()
            gws = [start_gateway(cfg, {"LANEWAY_LOG_LEVEL": "WARNING"}) for _ in range(3)]
            try:
                total = {"rps": 0.0}
                import concurrent.futures as cf

                with cf.ThreadPoolExecutor(3) as pool:
                    results = list(pool.map(
                        lambda gw: load(f"{gw.url}/v1/chat/completions", BODY, 32, seconds), gws))
                total["rps"] = sum(r["rps"] for r in results)
                print(f"Admitted throughput, 3 gateways, max_parallel_requests 8, 96 clients: "
                      f"{total['rps']:.0f} req/s")
            finally:
                for gw in gws:
                    gw.stop()
    finally:
        redis_server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["overhead", "cold", "redis", "lanes", "load", "soak"])
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--cold-python", action="append", metavar="PYTHON",
                   help="interpreter(s) of this Python version to time the cold start with "
                        "(default: this one and /usr/bin/pythonX.Y when present)")
    p.add_argument("--load-per-gateway", type=int, default=1000)
    p.add_argument("--soak-requests", type=int, default=300_000)
    p.add_argument("--soak-seconds", type=float, default=540.0,
                   help="stop starting new rounds of 10,000 requests after this long")
    args = p.parse_args()
    pythons = args.cold_python or cold_start_pythons()
    runs = {"overhead": lambda: bench_overhead(args.seconds),
            "cold": lambda: bench_cold_start(pythons),
            "redis": lambda: bench_redis(args.seconds), "lanes": lambda: bench_lanes(args.seconds)}
    long_runs = {"load": lambda: soak.bench_load(args.load_per_gateway),
                 "soak": lambda: soak.bench_soak(args.soak_requests, args.soak_seconds)}
    if args.only in long_runs:
        from bench import soak

        long_runs[args.only]()
        return
    for name, fn in runs.items():
        if args.only in (None, name):
            fn()


if __name__ == "__main__":
    main()
