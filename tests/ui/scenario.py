"""A gateway for the dashboard's tests: a one-slot group whose calls a fake upstream holds at a
gate, a group whose deployment always fails (so it cools down), a master key and a virtual key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.cluster import chat_body, unique
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, start_gateway

MASTER = "sk-ui-master-7f3a9c21d4"


@dataclass
class Scene:
    gw: Gateway
    upstream: FakeUpstream
    slot: str
    """The one-slot group: its calls wait at the gate of the same name."""
    broken: str
    """A group whose only deployment answers 500."""
    vkey: str
    """A virtual key with a $5 monthly budget."""
    alias: str
    """Its alias (tenant records outlive a test in a shared Redis: find its row by this)."""

    def snapshot(self) -> dict[str, Any]:
        r = httpx.get(f"{self.gw.url}/ui/snapshot", headers=self.gw.headers(), timeout=10)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def key_row(self, snap: dict[str, Any]) -> dict[str, Any]:
        return next(r for r in snap["tenants"]["rows"] if r["alias"] == self.alias)

    def group(self, snap: dict[str, Any], name: str) -> dict[str, Any]:
        return next(g for g in snap["groups"] if g["model_group"] == name)

    def wait_for(self, what: str, check: Callable[[dict[str, Any]], bool],
                 timeout: float = 10.0) -> dict[str, Any]:
        """The first snapshot for which `check` holds."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            if check(snap):
                return snap
            assert time.monotonic() < deadline, f"never saw {what}: {snap}"
            time.sleep(0.05)

    async def chat(self, client: httpx.AsyncClient, model: str, priority: int,
                   key: str | None = None) -> httpx.Response:
        return await client.post(
            f"{self.gw.url}/v1/chat/completions", json=chat_body(model, priority=priority),
            headers={"authorization": f"Bearer {key or MASTER}"})


def config(upstream: FakeUpstream, slot: str, broken: str, redis_url: str | None
           ) -> dict[str, Any]:
    def dep(name: str, model: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": f"openai/{model}", "api_base": upstream.url, "api_key": "k", **params}}

    # A long lease: on a busy machine a stall of the gateway longer than the default 1.2 s
    # would let a held call's slot expire and admit the next waiter, which is right for the
    # gateway but not the picture these tests look for.
    router: dict[str, Any] = {"num_retries": 0, "allowed_fails": 1, "cooldown_time": 30,
                              "max_queue_size": 2, "queue_lease_seconds": 6}
    if redis_url:
        router["redis_url"] = redis_url
    return {"model_list": [dep(slot, f"{slot}+gate={slot}", max_parallel_requests=1),
                           dep(broken, f"{broken}+status=500")],
            "router_settings": router, "general_settings": {"master_key": MASTER}}


@contextmanager
def scene(upstream: FakeUpstream, redis_url: str | None, env: dict[str, str] | None = None,
          args: tuple[str, ...] = ()) -> Iterator[Scene]:
    slot, broken = unique("slot"), unique("broken")
    gw = start_gateway(config(upstream, slot, broken, redis_url), env, key=MASTER, args=args)
    try:
        alias = unique("batch")
        r = httpx.post(f"{gw.url}/key/generate", headers=gw.headers(), timeout=10, json={
            "key_alias": alias, "max_budget": 5, "budget_duration": "30d"})
        assert r.status_code == 200, r.text
        vkey = r.json()["key"]
        gw.secrets = (*gw.secrets, vkey)
        yield Scene(gw, upstream, slot, broken, vkey, alias)
    finally:
        gw.stop()


async def fill_line(s: Scene, client: httpx.AsyncClient) -> list[asyncio.Task[httpx.Response]]:
    """With the gate closed: one call holds the slot, then one waiter at priority 0 (master
    key) and one at priority 5 (the virtual key); the line is then full (max_queue_size 2)."""
    calls = [asyncio.create_task(s.chat(client, s.slot, 0))]
    await asyncio.to_thread(s.wait_for, "the slot taken",
                            lambda snap: s.group(snap, s.slot)["in_flight"] == 1)
    calls.append(asyncio.create_task(s.chat(client, s.slot, 0)))
    calls.append(asyncio.create_task(s.chat(client, s.slot, 5, key=s.vkey)))
    await asyncio.to_thread(s.wait_for, "two waiting",
                            lambda snap: s.group(snap, s.slot)["waiting"] == 2)
    return calls


@contextmanager
def tiered(upstream: FakeUpstream, redis_url: str | None) -> Iterator[tuple[Gateway, str, str]]:
    """A gateway whose one-slot group (its calls held at the gate of the same name) reserves
    half of it for the tier `gold`; yields the gateway, the group and a key of that tier."""
    slot = unique("tiered")
    router: dict[str, Any] = {"num_retries": 0, "queue_lease_seconds": 6,
                              "priority_reservation": {"gold": 0.5}}
    if redis_url:
        router["redis_url"] = redis_url
    config = {"model_list": [{"model_name": slot, "litellm_params": {
        "model": f"openai/{slot}+gate={slot}", "api_base": upstream.url, "api_key": "k",
        "max_parallel_requests": 1}}],
        "router_settings": router, "general_settings": {"master_key": MASTER}}
    gw = start_gateway(config, key=MASTER)
    try:
        r = httpx.post(f"{gw.url}/key/generate", headers=gw.headers(), timeout=10,
                       json={"metadata": {"priority": "gold"}})
        assert r.status_code == 200, r.text
        gold = r.json()["key"]
        gw.secrets = (*gw.secrets, gold)
        yield gw, slot, gold
    finally:
        gw.stop()

