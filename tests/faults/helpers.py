"""What the fault scenarios share: a one-group config, the upstream's view of calls in flight,
the line as the gateways report it, and a scan of Redis for anything a request left behind."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import httpx
import redis

from router.state.keys import PREFIX, GroupKeys
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway


def group_config(redis_url: str, upstream: FakeUpstream, group: str, model: str,
                 parallel: int = 1, **router: Any) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": group, "litellm_params": {
            "model": f"openai/{model}", "api_base": upstream.url, "api_key": "k",
            "max_parallel_requests": parallel}}],
        "router_settings": {"redis_url": redis_url, "num_retries": 0, **router},
    }


def in_flight(upstream: FakeUpstream, model: str) -> list[dict[str, Any]]:
    """The calls of `model` the upstream has received and not answered yet."""
    return [r for r in upstream.requests()
            if r["body"].get("model") == model and "done" not in r]


def arrived(upstream: FakeUpstream, model: str, prefix: str) -> list[dict[str, Any]]:
    return [r for r in upstream.requests() if r["body"].get("model") == model
            and r["body"]["messages"][0]["content"].startswith(prefix)]


async def waiting(gw: Gateway, group: str) -> int:
    """Requests waiting in `group`'s line, as `/queue/status` of `gw` reports it."""
    async with httpx.AsyncClient(timeout=30) as c:
        for _ in range(50):  # on a starved machine a status read may time out (503): read again
            r = await c.get(f"{gw.url}/queue/status")
            if r.status_code != 503:
                break
            await asyncio.sleep(0.1)
    status = r.json()
    assert "groups" in status, f"/queue/status answered {r.status_code}: {r.text[:300]}"
    entry = next((g for g in status["groups"] if g["model_group"] == group), None)
    return int(entry["waiting"]) if entry else 0


def freeze(gw: Gateway) -> None:
    """Stop the gateway's process where it stands, the way a frozen instance looks."""
    os.kill(gw.proc.pid, signal.SIGSTOP)


def thaw(gw: Gateway) -> None:
    os.kill(gw.proc.pid, signal.SIGCONT)


def leftovers(redis_url: str, *groups: str, tenants: bool = False) -> list[str]:
    """Every line entry or in-flight slot of `groups` (and, with `tenants`, every tenant
    reservation) still alive in Redis: an entry of a sorted set of leases counts while its
    lease runs."""
    r = redis.Redis.from_url(redis_url)
    try:
        seconds, micros = r.time()
        now = seconds * 1000 + micros // 1000
        found = []
        patterns = [f"{GroupKeys.of(g).base}:*" for g in groups]
        patterns += [f"{PREFIX}:{{t:*"] if tenants else []
        for pattern in patterns:
            for raw in r.scan_iter(match=pattern.replace("[", "\\["), count=1000):
                key = raw.decode()
                if key.endswith(":line"):
                    if size := r.zcard(key):
                        found.append(f"{key}: {size} entries")
                elif key.endswith(":wmeta"):
                    # Besides waiters' arrivals it keeps the fair-share clock ("=V", "f:<tenant>").
                    waiters = [f for f in r.hkeys(key) if not f.startswith((b"=", b"f:"))]
                    if waiters:
                        found.append(f"{key}: {len(waiters)} entries")
                elif key.endswith((":wlease", ":run")):
                    live = r.zcount(key, f"({now}", "+inf")
                    if live:
                        found.append(f"{key}: {live} live leases")
        return found
    finally:
        r.close()


async def until_true(check: Any, what: str, timeout: float = 10.0) -> None:
    """Poll a (sync or async) check until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


def is_openai_error(response: httpx.Response) -> bool:
    body = response.json()
    return isinstance(body, dict) and set(body.get("error", {})) >= {
        "message", "type", "param", "code"}
