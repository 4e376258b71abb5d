"""Langfuse and webhook callbacks from a real gateway to loopback receivers: payload shapes,
batching, content, failures, and that a slow or dead receiver never delays a request."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import pytest

from tests.observability.helpers import chat
from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.procs import free_port
from tests.support.receivers import Receiver, langfuse_receiver, webhook_receiver

PUBLIC, SECRET = "pk-lf-public-1234", "sk-lf-secret-5678"
HOOK_TOKEN = "whsec-hook-token-9999"

CONFIG = {
    "model_list": [
        {"model_name": "m", "litellm_params": {"model": "gpt-4o", "mock_response": "hi there"}},
        {"model_name": "bad", "litellm_params": {
            "model": "gpt-4o", "mock_response": "litellm.BadRequestError: no such thing"}},
    ],
    "litellm_settings": {"success_callback": ["langfuse", "webhook"],
                         "failure_callback": ["langfuse", "webhook"]},
}


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[Receiver, Receiver]]:
    lf, wh = langfuse_receiver(), webhook_receiver()
    yield lf, wh
    lf.stop()
    wh.stop()


@pytest.fixture(scope="module")
def gw(sinks: tuple[Receiver, Receiver]) -> Iterator[Gateway]:
    lf, wh = sinks
    env = {**clean_env(), "LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET,
           "LANGFUSE_HOST": lf.url, "LANEWAY_WEBHOOK_URL": f"{wh.url}/hooks/laneway",
           "LANEWAY_WEBHOOK_HEADERS": f"Authorization=Bearer {HOOK_TOKEN},X-Source=gw",
           "LANEWAY_CALLBACK_FLUSH_SECONDS": "0.3"}
    gateway = start_gateway(CONFIG, env)
    yield gateway
    gateway.stop()


@pytest.fixture
def fresh(sinks: tuple[Receiver, Receiver]) -> tuple[Receiver, Receiver]:
    for r in sinks:
        r.clear()
    return sinks


def events(receiver: Receiver, kind: str | None = None) -> list[dict]:
    out = [e for got in receiver.received for e in got.json.get("batch", [])]
    return [e for e in out if kind is None or e["type"] == kind]


def generation(lf: Receiver, rid: str) -> dict:
    """The Langfuse generation of request `rid` (earlier tests' batches may still arrive)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [e for e in events(lf, "generation-create") if e["body"]["id"] == rid]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no generation for {rid}")


def hook_event(wh: Receiver, rid: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [e for got in wh.received for e in got.json["events"]
                 if e["request_id"] == rid]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no webhook event for {rid}")


def test_langfuse_trace_and_generation(gw: Gateway, fresh: tuple[Receiver, Receiver]) -> None:
    lf, _ = fresh
    meta = {"trace_id": "trace-abc", "session_id": "sess-1", "tags": ["prod", "a"],
            "generation_name": "greeting", "trace_user_id": "user-7"}
    with gw.client() as c:
        r = c.post("/v1/chat/completions", json=chat("m", metadata=meta, temperature=0.2),
                   headers={"x-request-id": "req-lf-1"})
    assert r.status_code == 200
    gen = generation(lf, "req-lf-1")
    (got,) = [g for g in lf.received if gen in g.json["batch"]]
    assert got.path == "/api/public/ingestion"
    assert got.headers["authorization"] == "Basic " + base64.b64encode(
        f"{PUBLIC}:{SECRET}".encode()).decode()
    assert got.json["metadata"]["sdk_name"] == "laneway"
    (trace,) = [e for e in events(lf, "trace-create") if e["body"]["id"] == "trace-abc"]
    assert trace["body"]["id"] == "trace-abc" and gen["body"]["traceId"] == "trace-abc"
    assert trace["body"]["sessionId"] == "sess-1" and trace["body"]["userId"] == "user-7"
    assert trace["body"]["tags"] == ["prod", "a"]
    g = gen["body"]
    assert g["id"] == "req-lf-1" and g["name"] == "greeting" and g["level"] == "DEFAULT"
    assert g["input"] == [{"role": "user", "content": "say hi"}]
    assert g["output"]["content"] == "hi there"
    assert g["modelParameters"] == {"temperature": 0.2}
    assert g["usage"]["output"] == 2 and g["usage"]["unit"] == "TOKENS"
    assert g["usage"]["total"] == g["usage"]["input"] + 2
    assert g["startTime"] <= g["endTime"] and g["endTime"].endswith("Z")
    assert g["metadata"]["laneway"]["model_group"] == "m"
    for event in (trace, gen):
        assert event["id"] and event["timestamp"].endswith("Z")


def test_stream_output_is_assembled(gw: Gateway, fresh: tuple[Receiver, Receiver]) -> None:
    lf, wh = fresh
    with gw.client() as c:
        r = c.post("/v1/chat/completions", json=chat("m", stream=True),
                   headers={"x-request-id": "req-stream"})
    assert r.status_code == 200 and "[DONE]" in r.text
    gen = generation(lf, "req-stream")
    assert gen["body"]["output"] == {"role": "assistant", "content": "hi there"}
    assert "completionStartTime" in gen["body"]
    event = hook_event(wh, "req-stream")
    assert event["stream"] is True and event["output"]["content"] == "hi there"
    assert event["ttft_ms"] is not None


def test_failure_callbacks(gw: Gateway, fresh: tuple[Receiver, Receiver]) -> None:
    lf, wh = fresh
    with gw.client() as c:
        r = c.post("/v1/chat/completions", json=chat("bad"), headers={"x-request-id": "req-bad"})
        assert r.status_code == 400
    gen = generation(lf, "req-bad")
    assert gen["body"]["level"] == "ERROR"
    assert "no such thing" in gen["body"]["statusMessage"]
    event = hook_event(wh, "req-bad")
    assert event["event"] == "failure" and event["status"] == 400
    assert event["error_type"] == "BadRequest" and "no such thing" in event["error_message"]


def test_webhook_batches_and_headers(gw: Gateway, fresh: tuple[Receiver, Receiver]) -> None:
    _, wh = fresh
    with gw.client() as c:
        for i in range(6):
            r = c.post("/v1/chat/completions", json=chat("m", metadata={"n": i}),
                       headers={"x-request-id": f"batch-{i}"})
            assert r.status_code == 200
    for i in range(6):
        hook_event(wh, f"batch-{i}")
    posts = [g for g in wh.received
             if any(e["request_id"].startswith("batch-") for e in g.json["events"])]
    sent = [e for g in posts for e in g.json["events"] if e["request_id"].startswith("batch-")]
    assert sorted(e["request_id"] for e in sent) == [f"batch-{i}" for i in range(6)]
    assert len(posts) < 6  # batched, not one POST per request
    first = posts[0]
    assert first.path == "/hooks/laneway"
    assert first.headers["authorization"] == f"Bearer {HOOK_TOKEN}"
    assert first.headers["x-source"] == "gw"
    assert first.json["source"] == "laneway"
    e = sent[0]
    assert e["event"] == "success" and e["model_group"] == "m" and e["status"] == 200
    assert e["input"] == [{"role": "user", "content": "say hi"}]
    assert e["metadata"] == {"n": int(e["request_id"].split("-")[1])}
    for key in ("deployment_id", "queue_ms", "upstream_ms", "duration_ms", "prompt_tokens",
                "completion_tokens", "start_time", "end_time", "priority", "retries"):
        assert key in e


def test_slow_or_dead_receivers_never_delay_requests() -> None:
    slow = webhook_receiver(delay=3.0)
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**clean_env(), "LANGFUSE_PUBLIC_KEY": PUBLIC, "LANGFUSE_SECRET_KEY": SECRET,
           "LANGFUSE_HOST": dead, "LANEWAY_WEBHOOK_URL": slow.url,
           "LANEWAY_CALLBACK_FLUSH_SECONDS": "0.05"}
    gw = start_gateway(CONFIG, env)
    try:
        with gw.client() as c:
            c.post("/v1/chat/completions", json=chat("m"))  # warm up the token counter
            started = time.monotonic()
            for _ in range(10):
                assert c.post("/v1/chat/completions", json=chat("m")).status_code == 200
            elapsed = time.monotonic() - started
        assert elapsed < 1.5, f"10 requests took {elapsed:.2f}s behind a slow receiver"
        slow.wait_for(1, timeout=10)  # the slow receiver still gets its batches
    finally:
        output = gw.stop()
        slow.stop()
    assert "langfuse: delivery of" in output  # the dead one is reported, without its URL
    assert dead not in output


def test_pending_callbacks_are_delivered_on_shutdown() -> None:
    hook = webhook_receiver()
    env = {**clean_env(), "LANEWAY_WEBHOOK_URL": hook.url,
           "LANEWAY_CALLBACK_FLUSH_SECONDS": "60"}
    config = {**CONFIG, "litellm_settings": {"success_callback": ["webhook"]}}
    gw = start_gateway(config, env)
    try:
        with gw.client() as c:
            assert c.post("/v1/chat/completions", json=chat("m")).status_code == 200
        time.sleep(0.2)
        assert hook.received == []  # the batch interval (60 s) has not come round
    finally:
        gw.stop()  # SIGTERM: the shutdown flushes what is pending
        hook.stop()
    assert len(hook.received) == 1 and len(hook.received[0].json["events"]) == 1
