"""`GET /ui/snapshot` through a real gateway, on the in-process state and on Redis: who may
read it, and that it shows the line, the deployments, the tenants and the fleet as they are."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.support.cluster import chat_body
from tests.ui.scenario import MASTER, fill_line, scene, tiered


@pytest.fixture(params=["memory", "redis"])
def redis_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    return str(request.getfixturevalue("redis_server").url)


def test_snapshot_shows_the_line_deployments_tenants_and_fleet(fake_openai, redis_url) -> None:
    # The access log is on (--detailed_debug): every request line is written, never a key.
    with scene(fake_openai, redis_url, args=("--detailed_debug",)) as s:
        url = f"{s.gw.url}/ui/snapshot"
        refused = httpx.get(url)
        assert refused.status_code == 401
        assert set(refused.json()["error"]) == {"message", "type", "param", "code"}
        assert httpx.get(url, headers={"authorization": "Bearer sk-wrong"}).status_code == 401
        as_key = httpx.get(url, headers={"authorization": f"Bearer {s.vkey}"})
        assert as_key.status_code == 403 and "master key" in as_key.json()["error"]["message"]
        assert httpx.get(f"{url}?key={MASTER}").status_code == 401, "no key in a URL"

        async def scenario() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                with fake_openai.gate(s.slot):
                    calls = await fill_line(s, client)
                    full = await s.chat(client, s.slot, 9)
                    assert full.status_code == 429
                    snap = s.snapshot()
                    g = s.group(snap, s.slot)
                    assert [(lane["priority"], lane["waiting"]) for lane in g["lanes"]] == [
                        (0, 1), (5, 1)]
                    assert g["head_wait_ms"] > 0
                    assert g["this_instance"]["rate_limited"] == 1
                    assert g["rejected_2m"] == 1  # the fleet's count, from shared state
                    (d,) = g["deployments"]
                    assert (d["in_flight"], d["max_parallel_requests"]) == (1, 1)
                    assert d["rpm"] == {"used": 1, "limit": None} and d["cooldown"] is None
                    key_row = s.key_row(snap)
                    assert key_row["waiting"] == 1 and key_row["in_progress"] == 1
                    assert key_row["served_share"] == 0  # its one call still waits
                    assert key_row["max_budget_usd"] == 5 and key_row["budget_resets_at"]
                answers = await asyncio.gather(*calls)
                assert [a.status_code for a in answers] == [200, 200, 200]
                broken = await s.chat(client, s.broken, 0)
                assert broken.status_code >= 500

        asyncio.run(scenario())
        snap = s.snapshot()
        g = s.group(snap, s.slot)
        assert g["waiting"] == 0 and g["lanes"] == [] and g["head_wait_ms"] is None
        assert g["admitted_60s"] == 3 and g["in_flight"] == 0
        (d,) = g["deployments"]
        assert d["rpm"]["used"] == 3 and d["latency_ewma_ms"] > 0
        assert d["this_instance"]["calls"] == 3 and d["this_instance"]["latency_p95_ms"] > 0
        assert d["this_instance"]["error_rate"] == 0
        assert (d["attempts_2m"], d["error_rate"]) == (3, 0) and d["latency_p95_ms"] > 0
        (bad,) = s.group(snap, s.broken)["deployments"]
        assert bad["cooldown"]["reason"] == "failures"
        assert 0 < bad["cooldown"]["remaining_s"] <= 30
        assert bad["this_instance"]["error_rate"] == 1 and bad["error_rate"] == 1
        key_row = s.key_row(snap)
        assert key_row["requests_60s"] == 1 and key_row["in_progress"] == 0
        # Served now, beside the master key's calls (in tokens, over every group).
        assert 0 < key_row["served_share"] < 1
        fleet = snap["fleet"]
        assert fleet["state"] == ("redis" if redis_url else "memory")
        assert fleet["instance"] in [i["id"] for i in fleet["instances"]]
        assert (fleet["redis_rtt_ms"] is None) == (redis_url is None)
        output = s.gw.stop()
        assert '"GET /ui/snapshot HTTP/1.1" 200' in output  # stop() checked: no key in it


def test_a_request_that_times_out_in_line_is_counted_fleet_wide(fake_openai, redis_url
                                                                  ) -> None:
    with scene(fake_openai, redis_url) as s:
        async def scenario() -> int:
            async with httpx.AsyncClient(timeout=30) as client:
                with fake_openai.gate(s.slot):
                    held = asyncio.create_task(s.chat(client, s.slot, 0))
                    await asyncio.to_thread(s.wait_for, "the slot taken",
                                            lambda snap: s.group(snap, s.slot)["in_flight"])
                    late = await client.post(
                        f"{s.gw.url}/v1/chat/completions",
                        json={"model": s.slot, "timeout": 0.3,
                              "messages": [{"role": "user", "content": "in a hurry"}]},
                        headers={"authorization": f"Bearer {MASTER}"})
                await held
                return late.status_code

        assert asyncio.run(scenario()) == 408
        # Its leave (and count) may reach Redis a moment after the 408 left.
        s.wait_for("the timeout counted", lambda snap: s.group(snap, s.slot)["timed_out_2m"] == 1)


def test_the_page_is_public_and_self_contained(fake_openai) -> None:
    with scene(fake_openai, None) as s:
        page = httpx.get(f"{s.gw.url}/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert "Master key" in page.text and "http" not in page.text.split("<body>")[1].replace(
            "https://", "")  # nothing fetched from anywhere
        assert len(page.content) < 150_000


def test_no_ui_turns_the_dashboard_off(fake_openai) -> None:
    with scene(fake_openai, None, {"NO_UI": "True"}) as s:
        for path in ("/ui", "/ui/snapshot"):
            assert httpx.get(f"{s.gw.url}{path}", headers=s.gw.headers()).status_code == 404


def test_without_a_master_key_the_snapshot_is_open_like_every_route(fake_openai) -> None:
    from tests.support.gateway import start_gateway
    from tests.ui.scenario import config

    cfg = config(fake_openai, "open-slot", "open-broken", None)
    del cfg["general_settings"]
    gw = start_gateway(cfg)
    try:
        snap = httpx.get(f"{gw.url}/ui/snapshot", timeout=10).json()
        assert {g["model_group"] for g in snap["groups"]} == {"open-slot", "open-broken"}
        assert snap["tenants"]["rows"] == []
    finally:
        gw.stop()


def test_each_reserved_tier_shows_its_waiters_and_use(fake_openai, redis_url) -> None:
    """With `priority_reservation`, the snapshot and /queue/status show per tier who waits and
    who holds a slot, across the fleet's shared state."""
    with tiered(fake_openai, redis_url) as (gw, slot, gold):
        def tiers(snap: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
            (g,) = [g for g in snap["groups"] if g["model_group"] == slot]
            return {t["tier"]: (t["waiting"], t["in_flight"], t["admitted_60s"])
                    for t in g["tiers"]}

        def snapshot() -> dict[str, Any]:
            got = httpx.get(f"{gw.url}/ui/snapshot", headers=gw.headers(), timeout=10)
            assert got.status_code == 200, got.text
            return dict(got.json())

        def wait_for(want: dict[str, tuple[int, int, int]]) -> None:
            deadline = time.monotonic() + 10
            while (seen := tiers(snapshot())) != want:
                assert time.monotonic() < deadline, seen
                time.sleep(0.05)

        async def scenario() -> None:
            async with httpx.AsyncClient(timeout=30) as client:
                def chat(key: str) -> asyncio.Task[httpx.Response]:
                    return asyncio.create_task(client.post(
                        f"{gw.url}/v1/chat/completions", json=chat_body(slot),
                        headers={"authorization": f"Bearer {key}"}))

                with fake_openai.gate(slot):
                    calls = [chat(gold)]
                    await asyncio.to_thread(wait_for, {"gold": (0, 1, 1), "default": (0, 0, 0)})
                    calls += [chat(MASTER), chat(gold)]
                    await asyncio.to_thread(wait_for, {"gold": (1, 1, 1), "default": (1, 0, 0)})
                    status = httpx.get(f"{gw.url}/queue/status", headers=gw.headers(),
                                       timeout=10).json()
                    (g,) = [g for g in status["groups"] if g["model_group"] == slot]
                    assert g["tiers"] == [
                        {"tier": "gold", "share": 0.5, "waiting": 1, "in_flight": 1},
                        {"tier": "default", "share": 0.5, "waiting": 1, "in_flight": 0}]
                answers = await asyncio.gather(*calls)
                assert [a.status_code for a in answers] == [200, 200, 200]

        asyncio.run(scenario())
        assert tiers(snapshot()) == {"gold": (0, 0, 2), "default": (0, 0, 1)}
