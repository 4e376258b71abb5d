"""Retries, fallbacks and cooldowns as a client sees them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.cluster import chat_body, fleet, unique
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway


def dep(group: str, up: FakeUpstream, model: str, **params: Any) -> dict[str, Any]:
    return {"model_name": group, "litellm_params": {
        "model": f"openai/{model}", "api_base": up.url, "api_key": "k", **params}}


@pytest.fixture(scope="module")
def names() -> dict[str, str]:
    return {k: unique(k) for k in ("primary", "backup", "small", "big", "strict", "lenient",
                                   "limited", "auth", "other", "stall", "any")}


@pytest.fixture(scope="module")
def gws(redis_server, fake_openai, names) -> Iterator[list[Gateway]]:
    n, up = names, fake_openai
    cfg = {
        "model_list": [
            dep(n["primary"], up, f"{n['primary']}+status=503"),
            dep(n["backup"], up, n["backup"]),
            dep(n["small"], up, f"{n['small']}+error=context_length"),
            dep(n["big"], up, n["big"]),
            dep(n["strict"], up, f"{n['strict']}+error=content_filter"),
            dep(n["lenient"], up, n["lenient"]),
            dep(n["limited"], up, f"{n['limited']}+retry_after=30"),
            dep(n["limited"], up, f"{n['limited']}-spare"),
            dep(n["auth"], up, f"{n['auth']}+status=401"),
            dep(n["auth"], up, f"{n['auth']}-ok"),
            dep(n["stall"], up, f"{n['stall']}+chunk_delay=1.5", stream_timeout=0.3),
            dep(n["any"], up, f"{n['any']}+status=500"),
            dep(n["other"], up, n["other"]),
        ],
        "router_settings": {
            "redis_url": redis_server.url, "num_retries": 2, "allowed_fails": 5,
            "cooldown_time": 60,
            "fallbacks": [{n["primary"]: [n["backup"]]}],
            "context_window_fallbacks": [{n["small"]: [n["big"]]}],
            "content_policy_fallbacks": [{n["strict"]: [n["lenient"]]}],
            "default_fallbacks": [n["other"]],
        },
    }
    with fleet(cfg, n=2) as gateways:
        yield gateways


def post(gw: Gateway, model: str, **kw: Any) -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", json=chat_body(model, **kw), timeout=30)


def test_fallback_after_retries(gws, names, fake_openai) -> None:
    r = post(gws[0], names["primary"])
    assert r.status_code == 200
    assert r.headers["x-laneway-model-group"] == names["backup"]
    assert r.headers["x-laneway-fallback-from"] == names["primary"]
    assert fake_openai.counts()[f"{names['primary']}+status=503"] == 3  # 1 try + 2 retries


def test_context_window_and_content_policy_fallbacks(gws, names) -> None:
    r = post(gws[0], names["small"])
    assert r.status_code == 200 and r.headers["x-laneway-model-group"] == names["big"]
    r = post(gws[1], names["strict"])
    assert r.status_code == 200 and r.headers["x-laneway-model-group"] == names["lenient"]


def test_default_fallbacks(gws, names) -> None:
    r = post(gws[0], names["any"])
    assert r.status_code == 200 and r.headers["x-laneway-model-group"] == names["other"]


def test_upstream_429_retry_after_cools_down_for_all_instances(gws, names, fake_openai) -> None:
    limited = f"{names['limited']}+retry_after=30"
    for _ in range(10):
        assert post(gws[0], names["limited"]).status_code == 200
        if fake_openai.counts().get(limited):
            break
    assert fake_openai.counts()[limited] == 1
    for i in range(10):
        r = post(gws[i % 2], names["limited"])
        assert r.status_code == 200 and r.json()["model"] == f"{names['limited']}-spare"
    assert fake_openai.counts()[limited] == 1


def test_auth_failure_cools_down_at_once(gws, names, fake_openai) -> None:
    bad = f"{names['auth']}+status=401"
    for _ in range(10):
        assert post(gws[1], names["auth"]).status_code == 200
    assert fake_openai.counts().get(bad, 0) <= 1  # tried at most once, then cooled down


def test_stalled_stream_ends_with_an_error_event(gws, names) -> None:
    started = time.monotonic()
    with httpx.stream("POST", f"{gws[0].url}/v1/chat/completions", timeout=30,
                      json=chat_body(names["stall"], stream=True)) as r:
        assert r.status_code == 200  # the first chunk came in time
        body = r.read().decode()
    assert time.monotonic() - started < 1.4
    assert '"type":"timeout"' in body and "[DONE]" not in body


def test_a_timeout_the_caller_asked_for_does_not_cool_the_deployment(fake_openai) -> None:
    """A client may ask for a shorter `timeout` than the gateway's. When that runs out the
    deployment was not slow by its own measure: the caller gets its 408, and the deployment,
    which allows one failure, keeps serving everyone else (no 429 from a cooldown with
    `max_queue_size: 0`). A timeout the deployment's own `timeout` sets still counts, and so
    does the gateway's when the deployment has none."""
    from tests.support.gateway import start_gateway

    slow, tight, hang = unique("slow"), unique("tight"), unique("hang")
    cfg = {"model_list": [dep(slow, fake_openai, f"{slow}+delay=0.6"),
                          dep(tight, fake_openai, f"{tight}+delay=0.6", timeout=0.2),
                          dep(hang, fake_openai, f"{hang}+delay=5")],
           "router_settings": {"num_retries": 0, "allowed_fails": 1, "cooldown_time": 30,
                               "max_queue_size": 0, "timeout": 1.5}}
    gw = start_gateway(cfg)
    try:
        with httpx.Client(base_url=gw.url, timeout=20) as c:
            for stream in (False, True):
                r = c.post("/v1/chat/completions",
                           json={**chat_body(slow), "timeout": 0.2, "stream": stream})
                assert r.status_code == 408, r.text
            assert c.post("/v1/chat/completions", json=chat_body(slow)).status_code == 200
            assert c.post("/v1/chat/completions", json=chat_body(tight)).status_code == 408
            assert c.post("/v1/chat/completions", json=chat_body(tight)).status_code == 429
            # No timeout of its own: the gateway's (1.5 s) is the deployment's, and counts.
            assert c.post("/v1/chat/completions", json=chat_body(hang)).status_code == 408
            assert c.post("/v1/chat/completions", json=chat_body(hang)).status_code == 429
    finally:
        gw.stop()
