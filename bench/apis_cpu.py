"""Gateway CPU per request of /v1/chat/completions, /v1/responses and /v1/messages.

    python bench/apis_cpu.py [--requests 50] [--rounds 40] [--stream no|yes|both]
    python bench/apis_cpu.py --conc 32 --seconds 1 --rounds 6

One gateway (one uvicorn worker, in-process state) in front of the fake OpenAI upstream, so all
three routes are served by the same chat deployment. The gateway's own CPU time (the client and
the upstream are other processes) is read from /proc before and after a batch of sequential
requests on a keep-alive connection (or, with `--conc`, a `wrk` run of that many connections,
divided by the requests it made). Routes are interleaved batch by batch, each round starting
with another one, so that the machine's drifting speed affects all three alike. Printed: the
median batch per route, and the median over rounds of each route's difference to chat in the
same round, which holds still on a noisy shared VM where latencies and even CPU times do not.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.fake_openai import start_fake_openai  # noqa: E402
from tests.support.gateway import start_gateway  # noqa: E402

ROUTES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "bench",
                             "messages": [{"role": "user", "content": "hello there"}]},
    "/v1/responses": {"model": "bench", "input": "hello there"},
    "/v1/messages": {"model": "bench", "max_tokens": 64,
                     "messages": [{"role": "user", "content": "hello there"}]},
}
_TICK = os.sysconf("SC_CLK_TCK")


def apis_config(upstream_url: str, upstream_delay: float = 0.0) -> dict[str, Any]:
    """One OpenAI-compatible deployment, so Responses and Messages are both translated; with
    `upstream_delay`, the fake upstream waits that long before it answers (before the first
    chunk of a stream), as a model would."""
    model = f"hosted_vllm/bench+delay={upstream_delay}" if upstream_delay else "hosted_vllm/bench"
    return {"model_list": [{"model_name": "bench", "litellm_params": {
        "model": model, "api_base": upstream_url, "api_key": "k"}}],
        "router_settings": {"num_retries": 0},
        "general_settings": {"response_store_ttl": 60}}


def cpu_seconds(pid: int) -> float:
    """The process's CPU time: all of its threads (uvicorn runs the app on the main one)."""
    try:  # nanoseconds on the CPU, per thread (schedstat needs CONFIG_SCHEDSTATS)
        return sum(int((t / "schedstat").read_text().split()[0])
                   for t in Path(f"/proc/{pid}/task").iterdir()) / 1e9
    except OSError:  # clock ticks (10 ms): enough for batches of thousands of requests
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def sequential(conn: http.client.HTTPConnection, path: str, body: dict[str, Any], n: int) -> int:
    raw = json.dumps(body)
    for i in range(n):
        try:
            conn.request("POST", path, raw, {"content-type": "application/json"})
            r = conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            if i:
                raise
            conn.close()  # the gateway closed the idle connection (keep-alive timeout)
            conn.request("POST", path, raw, {"content-type": "application/json"})
            r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status}")
    return n


def concurrent(url: str, body: dict[str, Any], conns: int, seconds: float) -> int:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{json.dumps(body)}]]\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("REQUESTS %d status=%d connect=%d read=%d write=%d '
        'timeout=%d\\n", summary.requests, summary.errors.status, summary.errors.connect, '
        "summary.errors.read, summary.errors.write, summary.errors.timeout))\nend\n")
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s",
                          str(script), url], capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("REQUESTS "))
    done, *errors = line.split()[1:]
    if any(not e.endswith("=0") for e in errors):
        raise RuntimeError(f"{url}: errors: {' '.join(errors)}")
    return int(done)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--rounds", type=int, default=40)
    p.add_argument("--conc", type=int, default=1)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--stream", choices=["no", "yes", "both"], default="both")
    args = p.parse_args()
    if args.conc > 1 and not shutil.which("wrk"):
        raise SystemExit("--conc needs wrk")
    streams = {"no": (False,), "yes": (True,), "both": (False, True)}[args.stream]
    with start_fake_openai() as up:
        gw = start_gateway(apis_config(up.url), {"LANEWAY_LOG_LEVEL": "WARNING"})
        pid = gw.proc.pid
        conns = {path: http.client.HTTPConnection("127.0.0.1", gw.port) for path in ROUTES}
        try:
            for path, body in ROUTES.items():  # warm up: connections, lazy imports, the store
                for stream in streams:
                    sequential(conns[path], path, {**body, "stream": stream}, 300)
            print(f"\nGateway CPU per request, µs (median of {args.rounds} interleaved batches; "
                  + (f"{args.requests} sequential requests" if args.conc == 1 else
                     f"wrk -c{args.conc} for {args.seconds:g} s") + " per route and round)\n")
            print("| stream | route | µs per request | over chat (paired median) | range |")
            print("|---|---|---|---|---|")
            chat = "/v1/chat/completions"
            for stream in streams:
                got: dict[str, list[float]] = {path: [] for path in ROUTES}
                paths = list(ROUTES)
                for i in range(args.rounds):
                    for path in paths[i % 3:] + paths[:i % 3]:  # each route first in turn
                        b = {**ROUTES[path], "stream": stream}
                        before = cpu_seconds(pid)
                        n = (sequential(conns[path], path, b, args.requests) if args.conc == 1
                             else concurrent(f"{gw.url}{path}", b, args.conc, args.seconds))
                        got[path].append((cpu_seconds(pid) - before) / n * 1e6)
                for path, values in got.items():
                    # The difference to chat within each round, then the median over rounds:
                    # what the machine's drift does to one round, it does to all three routes.
                    over = "" if path == chat else "{:+.0f}".format(statistics.median(
                        v - c for v, c in zip(values, got[chat], strict=True)))
                    print(f"| {'yes' if stream else 'no'} | {path} | "
                          f"{statistics.median(values):.0f} | {over} | "
                          f"{min(values):.0f} to {max(values):.0f} |")
        finally:
            for conn in conns.values():
                conn.close()
            gw.stop()


if __name__ == "__main__":
    main()
