"""`GET /metrics` after scripted traffic against a real gateway (Redis-backed): exact counters
for successes, 429s (no capacity, queue full), 408s in line, admissions with and without a wait,
cooldowns, retries, fallbacks, and the GenAI histograms."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from tests.observability.helpers import Samples, chat, scrape, total, value
from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.redis_server import RedisServer

KEY = "sk-metrics-master-key-42"


def mock(name: str, reply: str = "hello world", **params: object) -> dict:
    return {"model_name": name, "litellm_params": {"model": "gpt-4o", "mock_response": reply,
                                                   **params}}


CONFIG = {
    "model_list": [
        mock("fast"),
        mock("limited", rpm=2),
        mock("tight", mock_delay=0.6, max_parallel_requests=1),
        mock("slowq", mock_delay=1.5, max_parallel_requests=1),
        mock("broken", "litellm.InternalServerError: first"),
        mock("broken", "litellm.InternalServerError: second"),
        mock("primary", "litellm.ContextWindowExceededError"),
    ],
    "router_settings": {
        "num_retries": 1, "allowed_fails": 1, "cooldown_time": 30,
        "max_queue_size": {"limited": 0, "tight": 1},
        "context_window_fallbacks": [{"primary": ["fast"]}],
    },
    "general_settings": {"master_key": KEY},
}


@dataclass(frozen=True)
class Outcome:
    statuses: dict[str, list[int]]
    """Each model's response status codes, in order."""
    waits: dict[str, list[float]]
    """Each answered request's time in line (s), as its response told the client."""


@pytest.fixture(scope="module")
def traffic(redis_server: RedisServer) -> Iterator[tuple[Gateway, Samples, Outcome]]:
    """Run the script once; tests read the one scrape taken after it."""
    gw = start_gateway(CONFIG, {**clean_env(), "REDIS_URL": redis_server.url,
                                "LANEWAY_METRICS": "prometheus"}, key=KEY)
    statuses: dict[str, list[int]] = {}
    waits: dict[str, list[float]] = {}
    try:
        with gw.client() as c:
            def post(model: str, body: dict | None = None,
                     path: str = "/v1/chat/completions") -> int:
                r = c.post(path, json=body or chat(model))
                statuses.setdefault(model, []).append(r.status_code)
                if r.status_code == 200:
                    waits.setdefault(model, []).append(
                        float(r.headers["x-laneway-queue-ms"]) / 1000)
                return r.status_code

            for _ in range(3):
                post("fast")
            post("fast", chat("fast", stream=True, priority=5))
            post("fast", {"model": "fast", "input": "some text"}, "/v1/embeddings")
            for _ in range(3):
                post("limited")
            with ThreadPoolExecutor(3) as pool:
                list(pool.map(lambda _: post("tight"), range(3)))
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(post, "slowq")
                time.sleep(0.2)
                pool.submit(post, "slowq", chat("slowq", timeout=0.4)).result()
                first.result()
            post("broken")
            post("primary")
            assert httpx.get(f"{gw.url}/metrics").status_code == 401
        yield gw, scrape(gw), Outcome(statuses, waits)
    finally:
        gw.stop()


def test_statuses_of_the_script(traffic: tuple[Gateway, Samples, Outcome]) -> None:
    statuses = traffic[2].statuses
    assert statuses["fast"] == [200] * 5
    assert statuses["limited"] == [200, 200, 429]
    assert sorted(statuses["tight"]) == [200, 200, 429]
    assert sorted(statuses["slowq"]) == [200, 408]
    assert statuses["broken"] == [502] and statuses["primary"] == [200]  # upstream 500


def test_request_counters(traffic: tuple[Gateway, Samples, Outcome]) -> None:
    _, m, _ = traffic
    req = "laneway_requests_total"
    # The fallback from `primary` is served (and counted) by `fast`.
    assert value(m, req, model_group="fast", endpoint="chat", status="200") == 5
    assert value(m, req, model_group="fast", endpoint="embed", status="200") == 1
    assert value(m, req, model_group="limited", endpoint="chat", status="200") == 2
    assert value(m, req, model_group="limited", endpoint="chat", status="429") == 1
    assert value(m, req, model_group="tight", endpoint="chat", status="429") == 1
    assert value(m, req, model_group="slowq", endpoint="chat", status="408") == 1
    assert value(m, req, model_group="broken", endpoint="chat", status="502") == 1
    assert total(m, req) == 15


def test_429_and_408_counts(traffic: tuple[Gateway, Samples, Outcome]) -> None:
    _, m, _ = traffic
    rl = "laneway_rate_limited_total"
    assert value(m, rl, model_group="limited", priority="0", reason="no_capacity") == 1
    assert value(m, rl, model_group="tight", priority="0", reason="queue_full") == 1
    assert total(m, rl) == 2
    assert value(m, "laneway_timeouts_total", model_group="slowq", priority="0",
                 stage="queue") == 1
    assert total(m, "laneway_timeouts_total") == 1


def test_admissions_and_queue_wait(traffic: tuple[Gateway, Samples, Outcome]) -> None:
    _, m, outcome = traffic
    adm = "laneway_admissions_total"
    assert value(m, adm, model_group="fast", priority="0", queued="false") == 5
    assert value(m, adm, model_group="fast", priority="5", queued="false") == 1
    assert value(m, adm, model_group="tight", priority="0", queued="false") == 1
    assert value(m, adm, model_group="tight", priority="0", queued="true") == 1
    assert value(m, adm, model_group="slowq", priority="0", queued="false") == 1
    wait = "laneway_queue_wait_seconds"
    assert value(m, f"{wait}_count", model_group="tight", priority="0") == 1
    # It waited for the request ahead of it (0.6 s upstream, less however much later it came:
    # the three are sent at once, but threads start when the machine lets them); the metric
    # holds what its response told the client, and the one admitted at once waited nothing.
    waited = sorted(outcome.waits["tight"])
    assert waited[0] < 0.05 < waited[1] < 1.5
    assert value(m, f"{wait}_sum", model_group="tight", priority="0") == pytest.approx(
        waited[1], abs=0.002)
    assert total(m, f"{wait}_count") == 1


def test_cooldowns_retries_fallbacks(traffic: tuple[Gateway, Samples, Outcome]) -> None:
    _, m, _ = traffic
    # Both `broken` deployments failed once (allowed_fails 1) and went into cooldown.
    assert total(m, "laneway_deployment_cooldowns_total", model_group="broken") == 2
    assert len([k for k in m if k[0] == "laneway_deployment_cooldowns_total"]) == 2
    assert value(m, "laneway_retries_total", model_group="broken") == 1
    assert value(m, "laneway_fallbacks_total", from_group="primary", to_group="fast") == 1


def test_gen_ai_histograms(traffic: tuple[Gateway, Samples, Outcome]) -> None:
    _, m, _ = traffic
    chat_fast = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "mock",
                 "gen_ai_request_model": "fast"}
    dur = "gen_ai_client_operation_duration_seconds_count"
    assert value(m, dur, **chat_fast, error_type="") == 5
    assert value(m, dur, gen_ai_operation_name="embeddings", gen_ai_provider_name="mock",
                 gen_ai_request_model="fast", error_type="") == 1
    tokens = "gen_ai_client_token_usage"
    assert value(m, f"{tokens}_count", **chat_fast, gen_ai_token_type="output") == 5
    # "hello world" is two tokens; five chat answers.
    assert value(m, f"{tokens}_sum", **chat_fast, gen_ai_token_type="output") == 10
    assert value(m, f"{tokens}_count", **chat_fast, gen_ai_token_type="input") == 5
    assert value(m, "gen_ai_server_time_to_first_token_seconds_count", **chat_fast) == 1
    assert value(m, "gen_ai_server_time_per_output_token_seconds_count", **chat_fast) == 1
    assert value(m, "laneway_request_duration_seconds_count", model_group="fast") == 6
    assert total(m, "laneway_overhead_seconds_count") >= 8


def test_redis_latency_and_gauges(traffic: tuple[Gateway, Samples, Outcome]) -> None:
    _, m, _ = traffic
    redis = "laneway_redis_operation_duration_seconds_count"
    assert value(m, redis, operation="admit") >= 15
    assert value(m, redis, operation="release") >= 10
    assert total(m, "laneway_redis_errors_total") == 0
    assert value(m, "laneway_requests_in_flight") == 0
    # Nobody is waiting any more: no queue-depth series left.
    assert total(m, "laneway_queue_depth") == 0
