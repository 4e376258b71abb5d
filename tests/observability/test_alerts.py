"""Slack alerts from a real gateway to a loopback Slack receiver: every kind, one message per
kind per window in a storm, and the rate limit itself (with a clock the test controls)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from router.observe.alerts import Alerter
from router.observe.settings import AlertSettings
from router.records import CallRecord
from tests.observability.helpers import chat
from tests.support.gateway import clean_env, start_gateway
from tests.support.procs import free_port
from tests.support.receivers import Receiver, slack_receiver

SLACK_PATH = "/services/T0000/B0000/slacksecret123"


def mock(name: str, reply: str = "ok", **params: object) -> dict:
    return {"model_name": name, "litellm_params": {"model": "gpt-4o", "mock_response": reply,
                                                   **params}}


CONFIG = {
    "model_list": [
        mock("sleepy", mock_delay=1.6),
        mock("broken", "litellm.InternalServerError"),
        mock("line", mock_delay=0.8, max_parallel_requests=1),
    ],
    "router_settings": {"num_retries": 0, "allowed_fails": 1, "cooldown_time": 30},
    "general_settings": {"alerting": ["slack"], "alerting_threshold": 0.5},
}


def alert_env(slack: Receiver) -> dict[str, str]:
    return {**clean_env(), "SLACK_WEBHOOK_URL": slack.url + SLACK_PATH,
            "LANEWAY_ALERT_SLOW_SECONDS": "0.3", "LANEWAY_ALERT_QUEUE_DEPTH": "2",
            "LANEWAY_ALERT_QUEUE_WAIT_SECONDS": "0.3", "LANEWAY_ALERT_WINDOW_SECONDS": "60"}


def alerts(slack: Receiver) -> list[str]:
    """Every alert text received (several alerts may share one Slack message)."""
    return [text for got in slack.received for text in got.json["text"].split("\n\n")]


def kind_of(text: str) -> str:
    return text.split("(`", 1)[1].split("`)", 1)[0]


def kinds(slack: Receiver) -> list[str]:
    return sorted(kind_of(t) for t in alerts(slack))


@pytest.fixture(scope="module")
def storm() -> Iterator[tuple[Receiver, dict[str, bool]]]:
    slack = slack_receiver()
    gw = start_gateway(CONFIG, alert_env(slack))
    facts: dict[str, bool] = {}
    try:
        with gw.client() as c:
            c.post("/v1/chat/completions", json=chat("broken"))  # also warms up the gateway
            done = threading.Event()

            def slow_call() -> None:
                c.post("/v1/chat/completions", json=chat("sleepy", priority=3),
                       headers={"x-request-id": "hang-1"})
                done.set()

            worker = threading.Thread(target=slow_call)
            worker.start()
            deadline = time.monotonic() + 5
            while "hanging_request" not in kinds(slack) and time.monotonic() < deadline:
                time.sleep(0.02)
            facts["hanging_before_response"] = not done.is_set()
            worker.join()
            with ThreadPoolExecutor(4) as pool:  # a storm: more hanging and slow requests
                list(pool.map(lambda _: c.post("/v1/chat/completions", json=chat("sleepy")),
                              range(3)))
            with ThreadPoolExecutor(4) as pool:  # a line forms behind max_parallel_requests 1
                list(pool.map(lambda _: c.post("/v1/chat/completions", json=chat("line")),
                              range(4)))
        time.sleep(0.6)
        yield slack, facts
    finally:
        gw.stop()
        slack.stop()


def test_one_message_per_kind_in_a_storm(storm: tuple[Receiver, dict[str, bool]]) -> None:
    slack, _ = storm
    assert kinds(slack) == ["deployment_cooldown", "hanging_request", "queue_depth",
                            "queue_wait", "slow_response"]


def test_slack_payload_shape(storm: tuple[Receiver, dict[str, bool]]) -> None:
    slack, _ = storm
    for got in slack.received:
        assert got.path == SLACK_PATH
        assert got.headers["content-type"] == "application/json"
        assert set(got.json) == {"text"}


def test_hanging_alert_comes_before_the_response(
    storm: tuple[Receiver, dict[str, bool]]
) -> None:
    slack, facts = storm
    assert facts["hanging_before_response"]
    (text,) = [t for t in alerts(slack) if "hanging_request" in t]
    assert "`hang-1`" in text and "`sleepy`" in text and "priority: `3`" in text


def test_alert_details(storm: tuple[Receiver, dict[str, bool]]) -> None:
    slack, _ = storm
    by_kind = {kind_of(t): t for t in alerts(slack)}
    assert "model_group: `broken`" in by_kind["deployment_cooldown"]
    assert "after: `UpstreamError`" in by_kind["deployment_cooldown"]
    assert "model_group: `sleepy`" in by_kind["slow_response"]
    assert "model_group: `line`" in by_kind["queue_depth"]
    assert "model_group: `line`" in by_kind["queue_wait"]
    assert all("instance: `" in t for t in by_kind.values())


def test_redis_unreachable() -> None:
    slack = slack_receiver()
    env = {**alert_env(slack), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    gw = start_gateway(CONFIG, env)
    try:
        with gw.client() as c:
            for _ in range(3):
                assert c.post("/v1/chat/completions", json=chat("sleepy")).status_code == 503
        slack.wait_for(1)
        time.sleep(0.4)
        assert kinds(slack) == ["redis_unreachable"]
        assert "operation: `admit`" in alerts(slack)[0]
        metrics = httpx.get(f"{gw.url}/metrics").text
        assert 'laneway_redis_errors_total{error_type="ServiceUnavailable",operation="admit"} ' \
               '3.0' in metrics
    finally:
        gw.stop()
        slack.stop()


def test_rate_limit_window_and_suppressed_count() -> None:
    now = [1000.0]
    sent: list[str] = []
    settings = AlertSettings(slack_url="http://unused", slow_after=1.0, window=60.0)
    alerter = Alerter(settings, sent.append, source="test-host", clock=lambda: now[0])
    slow = CallRecord(request_id="r1", endpoint="chat", model="m", model_group="m",
                      deployment_id="d1", upstream_seconds=5.0)
    for _ in range(4):
        alerter.check_record(slow)
    assert len(sent) == 1 and "slow_response" in sent[0] and "`test-host`" in sent[0]
    now[0] += 59.0
    alerter.check_record(slow)
    assert len(sent) == 1
    now[0] += 2.0  # the window has passed: the next one goes out and says what was held back
    alerter.check_record(slow)
    assert len(sent) == 2 and "4 more like this" in sent[1]
    # Other kinds have their own window.
    alerter.check_record(CallRecord(request_id="r2", endpoint="chat", model="m",
                                    cooldowns=["d9"]))
    assert len(sent) == 3 and "deployment_cooldown" in sent[2]


def test_a_key_crossing_its_soft_budget_raises_one_alert() -> None:
    """The spend that crosses it is known once the call's release is answered, after the
    answer went out: the alert still comes, once."""
    slack = slack_receiver()
    master = "sk-master-alerts-0123456789"
    config = {
        "model_list": [mock("priced")],  # gpt-4o: priced by the shipped table
        "general_settings": {"alerting": ["slack"], "master_key": master},
    }
    gw = start_gateway(config, {**clean_env(), "SLACK_WEBHOOK_URL": slack.url + SLACK_PATH},
                       key=master)
    try:
        with gw.client() as c:
            key = c.post("/key/generate", json={"key_alias": "thrifty", "soft_budget": 1e-9}
                         ).json()["key"]
        for _ in range(3):
            r = httpx.post(f"{gw.url}/v1/chat/completions", json=chat("priced"),
                           headers={"authorization": f"Bearer {key}"})
            assert r.status_code == 200 and float(r.headers["x-litellm-response-cost"]) > 0
        deadline = time.monotonic() + 5
        while "soft_budget:key:thrifty" not in kinds(slack) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # a second one would have come by now
        assert [k for k in kinds(slack) if k.startswith("soft_budget")] == [
            "soft_budget:key:thrifty"]
        assert "`thrifty`" in alerts(slack)[0]
    finally:
        gw.stop()
        slack.stop()
