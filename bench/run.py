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
import contextlib
import itertools
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


def wrk(url: str, body: dict[str, Any], conns: int, seconds: float,
        key: str | None = None, think_ms: int = 0) -> dict[str, float]:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    # A random pause before each request (not part of its latency) keeps the connections from
    # moving in lockstep, all sent at once and all answered at once, behind a slow upstream.
    think = f"delay = function() return math.random(0, {think_ms}) end\n" if think_ms else ""
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n' + auth + think +
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


def pyload(url: str, body: dict[str, Any], conns: int, seconds: float,
           key: str | None = None, think_ms: int = 0) -> dict[str, float]:
    import asyncio
    import random

    headers = {"authorization": f"Bearer {key}"} if key else {}

    async def run() -> dict[str, float]:
        lat: list[float] = []
        errors = 0
        end = time.perf_counter() + seconds
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns)) as c:
            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < end:
                    if think_ms:
                        await asyncio.sleep(random.uniform(0, think_ms) / 1000)
                    t = time.perf_counter()
                    r = await c.post(url, json=body, headers=headers)
                    lat.append((time.perf_counter() - t) * 1000)
                    errors += r.status_code != 200

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conns)))
            took = time.perf_counter() - started
        lat.sort()
        return {"rps": len(lat) / took, "p50": lat[len(lat) // 2],
                "p99": lat[int(len(lat) * 0.99) - 1], "errors": errors}

    return asyncio.run(run())


def load(url: str, body: dict[str, Any], conns: int, seconds: float,
         key: str | None = None, think_ms: int = 0) -> dict[str, float]:
    return (wrk if shutil.which("wrk") else pyload)(url, body, conns, seconds, key, think_ms)


MASTER = "sk-bench-master-0123456789"


def gateway_for(upstream_url: str, extra_router: dict[str, Any] | None = None,
                deployment: dict[str, Any] | None = None, master: bool = False,
                litellm: dict[str, Any] | None = None) -> Any:
    config: dict[str, Any] = {
        "model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/bench", "api_base": upstream_url, "api_key": "k",
            **(deployment or {})}}],
        "router_settings": {"num_retries": 0, **(extra_router or {})},
    }
    if master:
        config["general_settings"] = {"master_key": MASTER}
    if litellm:
        config["litellm_settings"] = litellm
    gw = start_gateway(config, {"LANEWAY_LOG_LEVEL": "WARNING"}, key=MASTER if master else None)
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
    with _config_buckets(REPO / "examples/config.yaml") as buckets:
        _time_imports(pythons, package, env, buckets)


@contextlib.contextmanager
def _config_buckets(config: Path) -> Iterator[dict[str, dict[str, str]]]:
    """The same config in moto's S3 and in the GCS emulator (both on loopback): the
    environment each import probe needs to read it from there."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.procs import free_port, spawn, stop, wait_http

    s3_port, gcs_port = free_port(), free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    moto.start()
    script = Path(sys.executable).with_name("gcp-storage-emulator")
    gcs = spawn([str(script), "start", "--host", "127.0.0.1", "--port", str(gcs_port),
                 "--in-memory", "--quiet"])
    try:
        keys = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1"}
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}",
                          region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
        s3.create_bucket(Bucket="bench-config")
        s3.put_object(Bucket="bench-config", Key="config.yaml", Body=config.read_bytes())
        wait_http(f"http://127.0.0.1:{gcs_port}/storage/v1/b", gcs)
        httpx.post(f"http://127.0.0.1:{gcs_port}/storage/v1/b", params={"project": "bench"},
                   json={"name": "bench-config"}).raise_for_status()
        httpx.post(f"http://127.0.0.1:{gcs_port}/upload/storage/v1/b/bench-config/o",
                   params={"uploadType": "media", "name": "config.yaml"},
                   content=config.read_bytes()).raise_for_status()
        yield {
            "s3": {**keys, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{s3_port}",
                   "CONFIG_FILE_PATH": "s3://bench-config/config.yaml"},
            "gcs": {"STORAGE_EMULATOR_HOST": f"127.0.0.1:{gcs_port}",
                    "CONFIG_FILE_PATH": "gs://bench-config/config.yaml"},
        }
    finally:
        stop(gcs)
        moto.stop()


def _time_imports(pythons: list[str], package: Path, env: dict[str, str],
                  buckets: dict[str, dict[str, str]]) -> None:
    lambda_import = "import handler.aws_lambda"
    probes = {
        "import handler.aws_lambda": (lambda_import, {}),
        "the same, config from S3 (moto on loopback)": (lambda_import, buckets["s3"]),
        "the same, config from GCS (emulator on loopback)": (lambda_import, buckets["gcs"]),
        "import fastapi, mangum (the framework alone)": ("import fastapi, mangum", {}),
    }
    # -S keeps the interpreter's own site-packages (this venv's) off the path.
    code = ("import sys; sys.path.insert(0, {path!r}); import time; t = time.perf_counter(); "
            "{stmt}; print(time.perf_counter() - t); "
            "print(' '.join(m for m in ('boto3', 'botocore', 'httpx') if m in sys.modules))")
    pinned = ["taskset", "-c", "0"] if shutil.which("taskset") else []
    for python in pythons:
        print(f"{python} ({_interpreter_version(python)}):")
        runs: dict[str, list[float]] = {name: [] for name in probes}
        heavy: dict[str, set[str]] = {name: set() for name in probes}
        for _ in range(15):  # interleaved, so a noisy neighbour slows all alike
            for name, (stmt, extra) in probes.items():
                out = subprocess.run([*pinned, python, "-S", "-c",
                                      code.format(path=str(package), stmt=stmt)],
                                     env={**env, **extra}, capture_output=True, text=True,
                                     check=True).stdout.split()
                runs[name].append(float(out[0]))
                heavy[name].update(out[1:])
        base = statistics.median(runs["import handler.aws_lambda"])
        for name, times in runs.items():
            median = statistics.median(times)
            versus = (f" ({(median - base) * 1000:+.0f} ms vs the file config)"
                      if "config from" in name else "")
            listed = ", ".join(sorted(heavy[name])) or "none of boto3, botocore, httpx"
            imported = f"; imported: {listed}" if probes[name][0] == lambda_import else ""
            print(f"- {name}: median {median * 1000:.0f} ms{versus}, "
                  f"fastest {min(times) * 1000:.0f} ms over {len(times)} runs{imported}")


def bench_secrets() -> None:
    """What reading 20 `os.environ/` values from a secret manager adds to parsing a config,
    each manager on loopback (moto's server for AWS, the test fakes for the others), timed in
    fresh processes against the same config with the values in the environment."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.fake_secret_managers import (
        FakeAzureKeyVault,
        FakeGoogleSecretManager,
        FakeVault,
    )
    from tests.support.procs import free_port

    print("\n## Secrets from a manager (cold start, 20 secrets)\n")
    names = [f"BENCH_KEY_{i:02d}" for i in range(20)]
    values = {n: f"sk-bench-{n.lower()}" for n in names}
    models = [{"model_name": f"m{i}", "litellm_params": {"model": "openai/x",
                                                          "api_key": f"os.environ/{n}"}}
              for i, n in enumerate(names)]

    def doc(system: str | None, **settings: Any) -> str:
        general = {"key_management_system": system,
                   "key_management_settings": settings} if system else {}
        return json.dumps({"model_list": models, "general_settings": general})

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    aws_url = f"http://127.0.0.1:{port}"
    aws = boto3.client("secretsmanager", endpoint_url=aws_url, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    for name, value in values.items():
        aws.create_secret(Name=name, SecretString=value)
    vault = FakeVault(token="bench-token").start()
    gcp = FakeGoogleSecretManager().start()
    azure = FakeAzureKeyVault(client=("bench-app", "bench-secret")).start()
    vault.secrets.update(values)
    gcp.secrets.update(values)
    azure.secrets.update({n.replace("_", "-"): v for n, v in values.items()})
    cases = {
        "values in the environment (no manager)": (doc(None), values),
        "AWS Secrets Manager (moto)": (doc("aws_secret_manager"), {
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": aws_url}),
        "HashiCorp Vault (token)": (doc("hashicorp_vault"), {
            "VAULT_ADDR": vault.url, "VAULT_TOKEN": "bench-token"}),
        "Google Secret Manager (metadata token)": (doc("google_secret_manager",
                                                       api_base=gcp.url),
                                                   {"GCE_METADATA_HOST": gcp.hostport}),
        "Azure Key Vault (client credentials)": (doc("azure_key_vault"), {
            "AZURE_KEY_VAULT_URI": azure.url, "AZURE_AUTHORITY_HOST": azure.url,
            "AZURE_TENANT_ID": "fake-tenant", "AZURE_CLIENT_ID": "bench-app",
            "AZURE_CLIENT_SECRET": "bench-secret"}),
    }
    code = ("import json, sys, time; from router.config import parse_config; "
            "d = json.loads(sys.argv[1]); t = time.perf_counter(); cfg = parse_config(d); "
            "print(time.perf_counter() - t); "
            "assert cfg.model_list[-1].litellm_params.api_key.startswith('sk-bench-')")
    runs: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for _ in range(11):  # interleaved, so a noisy neighbour slows all alike
            for name, (config, extra) in cases.items():
                out = subprocess.run([sys.executable, "-c", code, config], cwd=REPO,
                                     env={"PATH": os.environ.get("PATH", ""), **extra},
                                     capture_output=True, text=True, check=True)
                runs[name].append(float(out.stdout.split()[0]))
    finally:
        for fake in (vault, gcp, azure):
            fake.stop()
        moto.stop()
    base = statistics.median(runs["values in the environment (no manager)"])
    print("| config values from | parse_config median ms | added ms | fastest ms |")
    print("|---|---|---|---|")
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"| {name} | {median * 1000:.1f} | {(median - base) * 1000:+.1f} | "
              f"{min(times) * 1000:.1f} |")


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


def _script_calls(url: str) -> int:
    import redis

    r = redis.Redis.from_url(url)
    stats = r.info("commandstats")
    r.close()
    return sum(v["calls"] for k, v in stats.items()
               if k in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval", "cmdstat_ping"))


def bench_redis(seconds: float) -> None:
    print("\n## Redis backend vs in-process state\n")
    print("| state | conc | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    redis_server = start_redis()
    try:
        with start_fake_openai() as up:
            cases = (("memory", {}, False), ("redis", {"redis_url": redis_server.url}, False),
                     ("redis, master key", {"redis_url": redis_server.url}, True),
                     ("redis, virtual key", {"redis_url": redis_server.url}, True))
            for name, extra, master in cases:
                gw = gateway_for(up.url, extra, master=master)
                try:
                    key = MASTER if master else None
                    if name.endswith("virtual key"):  # limits set, none reached: all checked
                        with gw.client() as c:
                            key = c.post("/key/generate", json={
                                "rpm_limit": 10**8, "tpm_limit": 10**10,
                                "max_parallel_requests": 10**4, "max_budget": 10**6,
                            }).json()["key"]
                    load(f"{gw.url}/v1/chat/completions", BODY, 8, 2, key)  # warm-up
                    for conns in (1, 32):
                        g = load(f"{gw.url}/v1/chat/completions", BODY, conns, seconds, key)
                        print(f"| {name} | {conns} | {g['rps']:.0f} | {g['p50']:.2f} | "
                              f"{g['p99']:.2f} |")
                    if name != "memory":
                        headers = {"authorization": f"Bearer {key}"} if key else {}
                        # The c=32 run's last requests, cut off by wrk, leave their slots by
                        # a release or a lease's end: renewals until then are not this count's.
                        time.sleep(2.5)
                        before = _script_calls(redis_server.url)
                        with httpx.Client() as c:
                            for _ in range(200):
                                c.post(f"{gw.url}/v1/chat/completions", json=BODY,
                                       headers=headers)
                        trips = (_script_calls(redis_server.url) - before) / 200
                        print(f"\nRedis round trips per request, {name} (happy path): "
                              f"{trips:.2f}\n")
                finally:
                    gw.stop()
            _virtual_key_over_master(up.url, redis_server.url, seconds)
            _stored_response_trips(up.url, redis_server.url)
    finally:
        redis_server.stop()


def _stored_response_trips(upstream: str, redis_url: str) -> None:
    """Round trips of a stored Responses request, translated to chat (the conversation is
    written by the release script), streamed and not."""
    gw = gateway_for(upstream, {"redis_url": redis_url}, {"model": "hosted_vllm/bench"})
    try:
        with httpx.Client(timeout=30) as c:
            for stream in (False, True):
                body = {"model": "bench", "input": "hello there", "stream": stream}
                c.post(f"{gw.url}/v1/responses", json=body).raise_for_status()  # warm-up
                before = _script_calls(redis_url)
                for _ in range(200):
                    c.post(f"{gw.url}/v1/responses", json=body).raise_for_status()
                trips = (_script_calls(redis_url) - before) / 200
                kind = "streamed" if stream else "not streamed"
                print(f"Redis round trips per stored Responses request, {kind}: {trips:.2f}\n")
    finally:
        gw.stop()


def _virtual_key_over_master(upstream: str, redis_url: str, seconds: float) -> None:
    """What a fully limited virtual key adds at c=1, measured on one gateway alternating the
    master key and the virtual key (separate gateways per case differ by more than that on a
    busy machine)."""
    import statistics

    gw = gateway_for(upstream, {"redis_url": redis_url}, master=True)
    try:
        with gw.client() as c:
            key = c.post("/key/generate", json={
                "rpm_limit": 10**8, "tpm_limit": 10**10, "max_parallel_requests": 10**4,
                "max_budget": 10**6}).json()["key"]
        url = f"{gw.url}/v1/chat/completions"
        load(url, BODY, 8, 1, MASTER)
        load(url, BODY, 8, 1, key)
        turn = max(1.0, seconds / 4)
        rounds = 16
        master, virtual = [], []
        for i in range(rounds):  # each goes first in every other round: no order effect
            if i % 2:
                virtual.append(load(url, BODY, 1, turn, key)["p50"])
            master.append(load(url, BODY, 1, turn, MASTER)["p50"])
            if not i % 2:
                virtual.append(load(url, BODY, 1, turn, key)["p50"])
        diffs = [v - m for m, v in zip(master, virtual, strict=True)]
        print(f"Virtual key (rpm, tpm, parallel and budget limits) over the master key, one "
              f"gateway, c=1, {rounds} alternations of {turn:g} s: p50 "
              f"{statistics.median(master):.3f} "
              f"vs {statistics.median(virtual):.3f} ms, median difference "
              f"{statistics.median(diffs):+.3f} ms\n")
    finally:
        gw.stop()


class _ScriptLog:
    """Redis MONITOR in a thread: when each state script ran, by Redis' own clock."""

    def __init__(self, url: str) -> None:
        import redis

        from router.state.scripts import script

        self._redis = redis.Redis.from_url(url)
        # A script is called by its function's name (FCALL) or by its SHA (EVALSHA).
        self._sha = {getattr(script(f"{n}.lua"), by): n
                     for n in ("admit", "release") for by in ("function", "sha")}
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
                if parts[0] in ("FCALL", "EVALSHA") and parts[1] in self._sha:
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
                before = _script_calls(redis_server.url)
                n = 400

                async def fire() -> None:
                    async with httpx.AsyncClient(timeout=60) as c:
                        await asyncio.gather(*(c.post(f"{gws[i % 3].url}/v1/chat/completions",
                                                      json=BODY) for i in range(n)))

                with _ScriptLog(redis_server.url) as script_log:
                    asyncio.run(fire())
                calls = (_script_calls(redis_server.url) - before) / n
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


def _jain(xs: list[float]) -> float:
    return sum(xs) ** 2 / (len(xs) * sum(x * x for x in xs)) if any(xs) else 0.0


def _fairness_run(redis_url: str, up: Any, fairness: str, par: int, delay: float,
                  demand: dict[str, int]) -> dict[str, float]:
    """One skewed load (`demand`: tenant → requests, all sent at once) through three
    gateways on one Redis, in front of one deployment with `par` slots."""
    import asyncio

    model = f"bench+delay={delay}"
    cfg = {"model_list": [{"model_name": "bench", "litellm_params": {
        "model": f"openai/{model}", "api_base": up.url, "api_key": "k",
        "max_parallel_requests": par}}],
        "router_settings": {"redis_url": redis_url, "num_retries": 0, "fairness": fairness}}
    gws = [start_gateway(cfg, {"LANEWAY_LOG_LEVEL": "WARNING"}) for _ in range(3)]
    try:
        for gw in gws:  # connections and scripts in place before the measured load
            httpx.post(f"{gw.url}/v1/chat/completions", json=BODY, timeout=30)
        up.clear()
        order = [user for user, n in demand.items() for _ in range(n)]

        async def fire() -> None:
            limits = httpx.Limits(max_connections=len(order) + 10)
            async with httpx.AsyncClient(timeout=120, limits=limits) as c:
                await asyncio.gather(*(c.post(
                    f"{gws[i % 3].url}/v1/chat/completions",
                    json={**BODY, "user": user, "max_tokens": 16})
                    for i, user in enumerate(order)))

        asyncio.run(fire())
    finally:
        for gw in gws:
            gw.stop()
    served = sorted((r for r in up.requests() if r["body"].get("model") == model),
                    key=lambda r: r["t"])
    users = [r["body"]["user"] for r in served]
    # Backlogged: until the first tenant's last request is served, everyone had one waiting.
    until = min(max(i for i, u in enumerate(users) if u == t) for t in demand)
    counts = dict.fromkeys(demand, 0)
    gap = 0
    for u in users[:until + 1]:
        counts[u] += 1
        gap = max(gap, max(counts.values()) - min(counts.values()))
    # Utilisation while there is a line: from the first call until the last one starts (after
    # that nobody waits, and slots fall idle one by one as the last calls end).
    start, end = served[par - 1]["t"], served[-1]["t"]
    busy = sum(max(0.0, min(r["done"], end) - max(r["t"], start)) for r in served)
    span = end - start
    arrivals = sorted(r["t"] for r in served)[par:]
    dones = sorted(r["done"] for r in served)
    delays = sorted((a - d) * 1000 for a, d in zip(arrivals, dones, strict=False))
    return {"jain": _jain([float(c) for c in counts.values()]), "gap": gap,
            "util": busy / (par * span), "p50": delays[len(delays) // 2],
            "p99": delays[max(0, int(len(delays) * 0.99) - 1)], "n": len(served),
            "backlogged": until + 1}


def bench_fairness(seconds: float) -> None:
    print("\n## Fair share (3 gateways, one Redis, one deployment with 4 slots, 250 ms calls)\n")
    demand = {"A": 100, "B": 10, "C": 10, "D": 10}
    print("Four tenants (the `user` field), A asking ten times what each other does, all at "
          "once; Jain's index and the largest gap in requests served between two tenants while "
          "all four were backlogged; utilisation of the 4 slots while anyone waited (from "
          "the 4th call to the start of the last); dispatch delay from a slot's answer to "
          "the next request on it.\n")
    print("| fairness | Jain's index | max gap (requests) | backlogged served | utilisation "
          "| dispatch p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    redis_server = start_redis()
    try:
        with start_fake_openai() as up:
            for fairness in ("user", "off"):
                r = _fairness_run(redis_server.url, up, fairness, 4, 0.25, demand)
                name = "fair share (`user`)" if fairness == "user" else "FIFO (`off`)"
                print(f"| {name} | {r['jain']:.3f} | {r['gap']:.0f} | {r['backlogged']:.0f} | "
                      f"{r['util'] * 100:.1f} % | {r['p50']:.2f} | {r['p99']:.2f} |")
    finally:
        redis_server.stop()


def bench_cache(seconds: float) -> None:
    print("\n## Response cache: hits vs proxied requests (state in Redis)\n")
    print("| case | conc | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    redis_server = start_redis()
    miss = {**BODY, "cache": {"no-cache": True, "no-store": True}}
    try:
        with start_fake_openai() as up:
            load(f"{up.url}/chat/completions", BODY, 8, 2)
            for conns in (1, 32):
                d = load(f"{up.url}/chat/completions", BODY, conns, seconds)
                print(f"| upstream direct | {conns} | {d['rps']:.0f} | {d['p50']:.2f} | "
                      f"{d['p99']:.2f} |")
            cases: tuple[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]], ...] = (
                ("proxied, no cache", {}, {}, BODY),
                ("cache on, miss (no-cache + no-store)", {"cache": True}, {}, miss),
                ("cache on, hit (redis)", {"cache": True}, {}, BODY),
                ("cache on, hit (local)", {"cache": True}, {"type": "local"}, BODY),
            )
            for name, litellm, params, body in cases:
                gw = gateway_for(up.url, {"redis_url": redis_server.url},
                                 litellm={**litellm, "cache_params": params} if litellm else {})
                try:
                    load(f"{gw.url}/v1/chat/completions", body, 8, 2)  # warm-up (and store)
                    for conns in (1, 32):
                        g = load(f"{gw.url}/v1/chat/completions", body, conns, seconds)
                        print(f"| {name} | {conns} | {g['rps']:.0f} | {g['p50']:.2f} | "
                              f"{g['p99']:.2f} |")
                finally:
                    gw.stop()
    finally:
        redis_server.stop()


def bench_apis(seconds: float) -> None:
    """/v1/responses and /v1/messages against /v1/chat/completions, all three translated onto
    the same chat upstream (an OpenAI-compatible deployment), so the difference is the cost of
    translation and of the other stream framing. First against an upstream that answers at
    once, which saturates the gateway's one worker at c=32 (there p50 ≈ 32 x its CPU per
    request, a throughput figure); then at c=32 against one that takes 200 ms, as a fast model
    does, where the worker has room and p50 is the latency a client sees."""
    print("\n## Responses and Messages APIs over chat completions (same upstream)\n")
    _apis_table(seconds, 0.0, (1, 32))
    print("\nThe same upstream answering after 200 ms (before the first chunk of a stream):\n")
    _apis_table(max(seconds, 4.0), 0.2, (32,))


def _apis_table(seconds: float, upstream_delay: float, concurrencies: tuple[int, ...]) -> None:
    print("| stream | conc | route | req/s | p50/p99 ms | added p50 ms over chat |")
    print("|---|---|---|---|---|---|")
    from bench.apis_cpu import ROUTES as routes
    from bench.apis_cpu import apis_config

    with start_fake_openai() as up:
        gw = start_gateway(apis_config(up.url, upstream_delay), {"LANEWAY_LOG_LEVEL": "WARNING"})
        pin(gw.proc.pid, 0)
        try:
            for path, body in routes.items():
                load(f"{gw.url}{path}", body, 8, 2)  # warm up
            for stream in (False, True):
                for conns in concurrencies:
                    # Interleaved twice, the better run kept: the machine is shared and noisy.
                    best: dict[str, dict[str, float]] = {}
                    for _ in range(2):
                        for path, body in routes.items():
                            r = load(f"{gw.url}{path}", {**body, "stream": stream}, conns,
                                     seconds / 2, think_ms=round(upstream_delay * 1000))
                            if path not in best or r["p50"] < best[path]["p50"]:
                                best[path] = r
                    chat_p50 = best["/v1/chat/completions"]["p50"]
                    for path, r in best.items():
                        added = "" if path == "/v1/chat/completions" else (
                            f"{r['p50'] - chat_p50:+.2f}")
                        print(f"| {stream} | {conns} | {path} | {r['rps']:.0f} | "
                              f"{r['p50']:.2f}/{r['p99']:.2f} | {added} |")
        finally:
            gw.stop()


def bench_translation() -> None:
    """CPU per request of the translations alone, in process: what the Responses and Messages
    routes add to a chat request, measurable even on a busy machine."""
    import timeit

    from router.translate import messages, responses

    chat_reply = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                  "choices": [{"index": 0, "finish_reason": "stop", "message": {
                      "role": "assistant", "content": "Hello from the fake upstream."}}],
                  "usage": {"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7}}
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [{**head, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
              for w in ["Hello", "from", "the", "fake", "upstream", "."]]
    chunks.append({**head, "choices": [], "usage": chat_reply["usage"]})
    r_body = {"model": "m", "input": "hello there", "instructions": "Be brief."}
    m_body = {"model": "m", "max_tokens": 64, "system": "Be brief.",
              "messages": [{"role": "user", "content": "hello there"}]}

    def r_plain() -> None:
        responses.to_chat(r_body)
        responses.from_chat(chat_reply, r_body, responses.new_id())

    def r_stream() -> None:
        responses.to_chat(r_body)
        s = responses.ResponsesStream(r_body, responses.new_id())
        s.start()
        for c in chunks:
            s.feed(c)
        s.end()

    def m_plain() -> None:
        messages.to_chat(m_body)
        messages.from_chat(chat_reply, "m")

    def m_stream() -> None:
        messages.to_chat(m_body)
        s = messages.MessagesStream("m")
        s.start()
        for c in chunks:
            s.feed(c)
        s.end()

    print("\n## Translation CPU per request (in process, 6 chunks per stream)\n")
    print("| route | stream | µs per request |")
    print("|---|---|---|")
    for name, stream, fn in (("/v1/responses", False, r_plain), ("/v1/responses", True, r_stream),
                             ("/v1/messages", False, m_plain), ("/v1/messages", True, m_stream)):
        n = 5000
        best = min(timeit.repeat(fn, number=n, repeat=5)) / n
        print(f"| {name} | {stream} | {best * 1e6:.1f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["overhead", "cold", "secrets", "redis", "lanes",
                                      "fairness", "cache", "apis", "load", "soak"])
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
            "cold": lambda: bench_cold_start(pythons), "secrets": bench_secrets,
            "redis": lambda: bench_redis(args.seconds), "lanes": lambda: bench_lanes(args.seconds),
            "fairness": lambda: bench_fairness(args.seconds),
            "cache": lambda: bench_cache(args.seconds),
            "apis": lambda: (bench_translation(), bench_apis(args.seconds))}
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
