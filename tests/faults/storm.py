"""A storm in front of a small limit: many waiting requests of random priorities, spread over a
fleet, some cancelled by their clients while they wait. Shared by the CI test (a few hundred
requests) and `bench/run.py --only load` (4 gateways x 1,000).

Priority inversion, precisely: a request is admitted (given its upstream slot, by Redis' clock)
while a strictly more important request of the same group that entered the line before that
moment is still waiting: neither admitted nor gone (cancelled, timed out). A waiter whose place
lapsed because its instance did not renew the lease still counts as waiting: from its client's
side it never stopped. Admissions, line entries and departures are read from Redis' MONITOR
stream, in the order Redis ran them.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import redis

from router.state.keys import GroupKeys
from router.state.scripts import script
from tests.faults.helpers import in_flight, leftovers, waiting
from tests.faults.wire import Connection
from tests.support.cluster import chat_body
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway

PRIORITIES = 10


@dataclass
class StormResult:
    statuses: Counter[int | str] = field(default_factory=Counter)
    cancelled: int = 0
    entered: int = 0
    """Requests that entered the line (the rest were admitted at once)."""
    admissions: int = 0
    inversions: int = 0
    renewals: int = 0
    """Lease renewal calls of the group, all instances together, while the line drained."""
    peak: int = 0
    dispatch_ms: list[float] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lined_up: bool = True
    """Everyone but the first `limit` was seen waiting before the gate opened."""

    def percentile(self, q: float) -> float:
        data = sorted(self.dispatch_ms)
        return data[min(len(data) - 1, int(len(data) * q))] if data else float("nan")

    def summary(self) -> str:
        return (f"{sum(self.statuses.values())} requests: {dict(self.statuses)}, "
                f"{self.cancelled} cancelled; {self.entered} waited; {self.admissions} admissions, "
                f"{self.inversions} priority inversions; upstream peak {self.peak} in flight; "
                f"dispatch delay p50 {self.percentile(0.5):.1f} ms, "
                f"p99 {self.percentile(0.99):.1f} ms over {len(self.dispatch_ms)}; "
                f"drained in {self.seconds:.1f} s with {self.renewals} lease renewals"
                + ("" if self.lined_up else "; NOT all seen waiting before the gate opened"))


class LineLog:
    """Redis MONITOR in a thread, reduced to the line's events of one group."""

    def __init__(self, url: str, group: str) -> None:
        self._redis = redis.Redis.from_url(url)
        self._base = GroupKeys.of(group).base
        # A script is called by its function's name (FCALL) or by its SHA (EVALSHA).
        self._sha = {getattr(script(f"{n}.lua"), by): n
                     for n in ("admit", "cancel", "renew") for by in ("function", "sha")}
        self.renewals = 0
        self.events: list[tuple[str, str, int]] = []
        """(kind, request id, priority) in Redis' order; kind: ask, enter, admit, leave."""

    def __enter__(self) -> LineLog:
        self._monitor = self._redis.monitor().__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            for event in self._monitor.listen():
                self._note(event["command"].split(" "))
        except Exception:  # the monitor connection was closed: done
            return

    def _note(self, parts: list[str]) -> None:
        if parts[0] in ("FCALL", "EVALSHA") and self._sha.get(parts[1]):
            keys = int(parts[2])
            if parts[3].startswith(self._base):
                args = parts[3 + keys:]
                if self._sha[parts[1]] == "admit":
                    self.events.append(("ask", args[0], int(args[2])))
                elif self._sha[parts[1]] == "renew":
                    self.renewals += 1
                else:
                    self.events.append(("leave", args[0], 0))
        elif parts[0] == "HSET" and parts[1] == f"{self._base}:wmeta" and not parts[2].startswith(
                ("=", "f:", "t:")):  # a waiter's arrival, not the fair-share clock
            self.events.append(("enter", parts[2], 0))
        elif parts[0] == "ZADD" and parts[1].startswith(f"{self._base}:d:") and (
                parts[1].endswith(":rpm")):
            self.events.append(("admit", parts[-1].rpartition(".")[0], 0))

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)  # the last lines
        self._monitor.connection.disconnect()
        self._thread.join(5)
        self._redis.close()

    def inversions(self) -> tuple[int, int, int]:
        """(line entries, admissions, admissions that were priority inversions)."""
        prio: dict[str, int] = {}
        waiting_at: Counter[int] = Counter()
        waiting_ids: set[str] = set()
        admissions = inverted = entered = 0
        for kind, rid, p in self.events:
            if kind == "ask":
                prio[rid] = p
            elif kind == "enter" and rid not in waiting_ids:
                waiting_ids.add(rid)
                waiting_at[prio[rid]] += 1
                entered += 1
            elif kind in ("admit", "leave") and (kind == "admit" or rid in waiting_ids):
                mine = prio.get(rid, 0)
                if rid in waiting_ids:
                    waiting_ids.discard(rid)
                    waiting_at[mine] -= 1
                if kind == "admit":
                    admissions += 1
                    if any(waiting_at[q] > 0 for q in range(mine)):
                        inverted += 1
        return entered, admissions, inverted


async def storm(gws: list[Gateway], upstream: FakeUpstream, redis_url: str, group: str,
                model: str, n: int, limit: int, cancel_share: float = 0.1, seed: int = 7,
                ) -> StormResult:
    """Send `n` requests (random priorities, round-robin over `gws`) while the upstream's gate
    holds the first `limit`; once all wait, open it and cancel `cancel_share` of them at random
    moments while the line drains. Needs `model` to carry `+gate=<group>`."""
    rng = random.Random(seed)
    out = StormResult()

    def send(i: int) -> asyncio.Task[int]:
        body = chat_body(group, f"r{i}", priority=rng.randrange(PRIORITIES))
        return asyncio.create_task(Connection(gws[i % len(gws)].url).post(body))

    with LineLog(redis_url, group) as log:
        with upstream.gate(group):
            tasks = [send(i) for i in range(n)]
            deadline = time.monotonic() + 30 + n / 50
            # Everyone waits but the first `limit`, less any answered already (which the
            # result then shows: nobody should be).
            while await waiting(gws[0], group) < n - limit - sum(t.done() for t in tasks):
                if time.monotonic() > deadline:  # drain anyway; the result shows what happened
                    out.lined_up = False
                    break
                await asyncio.sleep(0.05)
            opened = time.time()
        started = time.monotonic()
        doomed = rng.sample(range(limit, n), int(n * cancel_share))
        # Spread over about the first half of the drain (a few ms per hand-over).
        moments = sorted(rng.uniform(0, n / limit * 0.004) for _ in doomed)

        async def cancel() -> None:
            for i, moment in zip(doomed, moments, strict=True):
                await asyncio.sleep(max(0.0, started + moment - time.monotonic()))
                tasks[i].cancel()

        canceller = asyncio.create_task(cancel())
        renewed = log.renewals
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await canceller
        out.seconds = time.monotonic() - started
        out.renewals = log.renewals - renewed
    out.entered, out.admissions, out.inversions = log.inversions()
    for r in results:
        if isinstance(r, int):
            out.statuses[r] += 1
        elif isinstance(r, asyncio.CancelledError):
            out.cancelled += 1
        else:
            out.statuses[type(r).__name__] += 1
    calls = [r for r in upstream.requests() if r["body"].get("model") == model]
    out.peak = upstream.peaks().get(model, 0)
    out.dispatch_ms = dispatch_delays(calls, opened)
    for _ in range(50):  # cancelled callers' upstream calls finish; leases run out
        out.leftovers = leftovers(redis_url, group)
        if not out.leftovers and not in_flight(upstream, model):
            break
        await asyncio.sleep(0.1)
    return out


def dispatch_delays(calls: list[dict[str, Any]], opened: float) -> list[float]:
    """Milliseconds from each answer to the upstream call that took its slot: while the line is
    never empty, the k-th call to arrive after `opened` took the slot the k-th answer freed."""
    freed = sorted(r["done"] for r in calls if "done" in r and r["done"] >= opened - 0.001)
    taken = sorted(r["t"] for r in calls if r["t"] >= opened)
    return [max(0.0, (t - f) * 1000) for f, t in zip(freed, taken, strict=False)]
