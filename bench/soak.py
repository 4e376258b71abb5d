"""Long runs, not in CI: the full-size storm (`--only load`) and the soak (`--only soak`).

The soak sends a bounded number of mixed requests (non-streamed, streamed, upstream errors,
client cancellations of both kinds) through three gateways sharing one Redis, from several
client processes, and reports what a long-running fleet must not do: grow its memory, leak
file descriptors, leave keys in Redis, or fail beyond the errors it was asked to relay.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from tests.faults.helpers import group_config, leftovers
from tests.faults.storm import storm
from tests.faults.wire import Connection
from tests.support.cluster import chat_body
from tests.support.fake_openai import start_fake_openai
from tests.support.gateway import Gateway, start_gateway
from tests.support.redis_server import start_redis

QUIET = {"LANEWAY_LOG_LEVEL": "WARNING"}

# What each request of the soak is, by share: (kind, group, share). The groups' deployments
# answer normally, fail with a 500, or answer slowly enough that a client gives up first.
MIX = [("chat", "soak", 0.45), ("stream", "soak", 0.30), ("error", "soak-err", 0.10),
       ("cancel", "soak-slow", 0.05), ("stream-cancel", "soak", 0.10)]
EXPECTED = {("chat", 200), ("stream", 200), ("error", 500), ("stream-cancel", 200)}
"""(kind, status) pairs that are not errors; `cancel` requests end on the client's side."""


def bench_load(per_gateway: int = 1000) -> None:
    print(f"\n## Storm: 4 gateways x {per_gateway} waiting requests, limit 4, "
          "10 % cancellations\n")
    redis_server = start_redis()
    try:
        with start_fake_openai() as up:
            group = "storm"
            model = f"{group}+gate={group}+delay=0.005"
            cfg = group_config(redis_server.url, up, group, model, parallel=4,
                               max_queue_size=-1, timeout=600)
            gws = [start_gateway(cfg, QUIET) for _ in range(4)]
            try:
                result = asyncio.run(storm(gws, up, redis_server.url, group, model,
                                           n=4 * per_gateway, limit=4))
            finally:
                logs = [gw.stop() for gw in gws]
        print(result.summary())
        _report_logs(logs)
        print(f"left in Redis: {result.leftovers or 'nothing'}")
        _report_redis_time(redis_server.url)
    finally:
        redis_server.stop()


def _report_redis_time(url: str) -> None:
    """Where Redis spent its time during the run: calls and microseconds per call by command."""
    stats = redis.Redis.from_url(url).info("commandstats")
    busiest = sorted(stats.items(), key=lambda kv: -kv[1]["usec"])[:4]
    print("redis busy time: " + ", ".join(
        f"{name.removeprefix('cmdstat_')} {s['calls']} x {s['usec_per_call']:.0f} us"
        for name, s in busiest))


def _proc(pid: int) -> tuple[float, int]:
    """(resident MB, open file descriptors) of a process."""
    rss = next(int(line.split()[1]) / 1024 for line in
               Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


async def _client(urls: list[str], count: int, seed: int, conns: int) -> Counter[str]:
    rng = random.Random(seed)
    kinds = [k for k, _, _ in MIX]
    groups = {k: g for k, g, _ in MIX}
    weights = [w for _, _, w in MIX]
    outcome: Counter[str] = Counter()
    left = count

    async def one(url: str) -> None:
        nonlocal left
        conn = Connection(url)
        while left > 0:
            left -= 1
            kind = rng.choices(kinds, weights)[0]
            body = chat_body(groups[kind], "soak", priority=rng.randrange(3))
            try:
                if kind == "cancel":
                    try:
                        async with asyncio.timeout(0.01):
                            status = await conn.post(body)
                    except TimeoutError:
                        conn.close()
                        outcome["cancel:client-left"] += 1
                        continue
                else:
                    if kind.startswith("stream"):
                        body["stream"] = True
                    status = await conn.post(body, first_bytes_only=kind == "stream-cancel")
                outcome[f"{kind}:{status}"] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.close()
                outcome[f"{kind}:{type(exc).__name__}"] += 1
        conn.close()

    await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(conns)))
    return outcome


def _client_process(urls: list[str], count: int, seed: int, conns: int,
                    queue: Any) -> None:
    queue.put(asyncio.run(_client(urls, count, seed, conns)))


def _drive(urls: list[str], count: int, clients: int, conns: int, seed: int) -> Counter[str]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_client_process,
                         args=(urls, count // clients, seed + i, conns, queue))
             for i in range(clients)]
    for p in procs:
        p.start()
    total: Counter[str] = Counter()
    for _ in procs:
        total.update(queue.get())
    for p in procs:
        p.join()
    return total


def bench_soak(requests: int = 300_000, seconds: float = 540.0) -> None:
    """`requests` in rounds of 10,000 (after a warm-up round) until done or `seconds` have
    passed."""
    print(f"\n## Soak: up to {requests} mixed requests or {seconds:.0f} s, 3 gateways\n")
    redis_server = start_redis()
    r = redis.Redis.from_url(redis_server.url)
    try:
        with start_fake_openai() as up:
            cfg = group_config(redis_server.url, up, "soak", "soak", parallel=16,
                               allowed_fails=1_000_000)
            cfg["model_list"] += [
                group_config(redis_server.url, up, "soak-err", "soak-err+status=500",
                             parallel=16)["model_list"][0],
                group_config(redis_server.url, up, "soak-slow", "soak-slow+delay=0.05",
                             parallel=16)["model_list"][0]]
            gws: list[Gateway] = [start_gateway(cfg, QUIET) for _ in range(3)]
            urls = [gw.url for gw in gws]
            try:
                size = min(10_000, requests)
                warm = _drive(urls, size, 2, 24, seed=1)
                time.sleep(2)
                base = [_proc(gw.proc.pid) for gw in gws]
                base_keys = set(r.scan_iter(count=1000))
                started = time.monotonic()
                outcome: Counter[str] = Counter()
                done = 0
                rounds = []
                while done < requests and time.monotonic() - started < seconds:
                    t = time.monotonic()
                    outcome.update(_drive(urls, size, 2, 24, seed=100 + done))
                    done += size
                    rounds.append((done, size / (time.monotonic() - t),
                                   [_proc(gw.proc.pid)[0] for gw in gws]))
                elapsed = time.monotonic() - started
                time.sleep(2)  # in-flight work and unreleased slots settle
                end = [_proc(gw.proc.pid) for gw in gws]
                end_keys = set(r.scan_iter(count=1000))
                left = leftovers(redis_server.url, "soak", "soak-err", "soak-slow")
            finally:
                logs = [gw.stop() for gw in gws]
                if os.environ.get("SOAK_LOGS"):
                    Path(os.environ["SOAK_LOGS"]).write_text("\n".join(logs))
        _report_logs(logs)
        _report(warm, outcome, done, elapsed, base, end, base_keys, end_keys, left, rounds)
    finally:
        r.close()
        redis_server.stop()


def _report_logs(logs: list[str]) -> None:
    """What the gateways logged at WARNING and above, by message (first 100 characters)."""
    lines: Counter[str] = Counter()
    for out in logs:
        for line in out.splitlines():
            if any(level in line for level in ("WARNING", "ERROR", "CRITICAL", "Traceback")):
                try:  # grouped by message, not by the moment it was logged
                    record = json.loads(line)
                    line = f"{record['level']} {record['logger']}: {record['message']}"
                except (ValueError, KeyError, TypeError):
                    pass
                lines[line[:160]] += 1
    print(f"gateway log lines at WARNING or above: {sum(lines.values())}")
    for line, count in lines.most_common(8):
        print(f"  {count} x {line}")
    for out in logs:  # where the first traceback ends, if any
        if "Traceback" in out:
            start = out.index("Traceback")
            end = out.find("\n", start)
            print(out[max(start, end - 1500):end].replace("\\n", "\n"))
            break


def _report(warm: Counter[str], outcome: Counter[str], done: int, elapsed: float,
            base: list[tuple[float, int]], end: list[tuple[float, int]],
            base_keys: set[Any], end_keys: set[Any], left: list[str],
            rounds: list[tuple[int, float, list[float]]]) -> None:
    unexpected = {k: v for k, v in outcome.items()
                  if k != "cancel:client-left" and tuple(
                      (k.split(":")[0], int(k.split(":")[1]))
                      if k.split(":")[1].isdigit() else (k, 0)) not in EXPECTED}
    print(f"{done} requests in {elapsed:.0f} s ({done / elapsed:.0f} req/s) after a "
          f"{sum(warm.values())}-request warm-up; outcomes: {dict(sorted(outcome.items()))}")
    print(f"unexpected outcomes: {unexpected or 'none'}")
    print("\n| gateway | RSS after warm-up MB | RSS at end MB | growth MB | fds before | "
          "fds after |")
    print("|---|---|---|---|---|---|")
    for i, ((rss0, fd0), (rss1, fd1)) in enumerate(zip(base, end, strict=True)):
        print(f"| {i} | {rss0:.1f} | {rss1:.1f} | {rss1 - rss0:+.1f} | {fd0} | {fd1} |")
    print(f"\nRedis keys: {len(base_keys)} after warm-up, {len(end_keys)} at the end "
          f"({len(end_keys - base_keys)} new, {len(base_keys - end_keys)} gone); live line "
          f"entries, slots or reservations: {left or 'none'}")
    print("RSS by round (MB per gateway): " + "; ".join(
        f"{n // 1000}k {rps:.0f} req/s {'/'.join(f'{x:.0f}' for x in rss)}"
        for n, rps, rss in rounds))
