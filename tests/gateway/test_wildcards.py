"""Wildcard entries through a real gateway: the client's model string picks only the upstream
model id (never the provider, base URL or key), and one pattern is one group with one line and
one set of limits however many names it matches."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.receivers import Received, Receiver

KEY = "wildcard-master-key-0123456789"
TEMPLATE_KEY = "template-upstream-key-0123456789"
OPENAI_TEMPLATE_KEY = "openai-template-key-0123456789"


def _reject(_: Received) -> tuple[int, bytes, str]:
    return 500, b'{"error": {"message": "the decoy must never be called"}}', "application/json"


@pytest.fixture(scope="module")
def decoy() -> Iterator[Receiver]:
    """Where every vendor's environment points: a request here went somewhere it must not."""
    with Receiver(_reject).start() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def gw(fake_openai: FakeUpstream, decoy: Receiver) -> Iterator[Gateway]:
    config = {
        "model_list": [
            {"model_name": "*", "litellm_params": {
                "model": "*", "api_base": fake_openai.url, "api_key": "os.environ/TEMPLATE_KEY",
                "max_parallel_requests": 1}},
            {"model_name": "openai/*", "litellm_params": {
                "model": "openai/*", "api_base": fake_openai.url,
                "api_key": "os.environ/OPENAI_TEMPLATE_KEY"}},
        ],
        "router_settings": {"num_retries": 0},
        "general_settings": {"master_key": "os.environ/WILD_MASTER_KEY"},
    }
    # Every vendor a model prefix could name is pointed at the decoy, with a key of its own.
    env = {**clean_env(), "TEMPLATE_KEY": TEMPLATE_KEY, "OPENAI_TEMPLATE_KEY": OPENAI_TEMPLATE_KEY,
           "WILD_MASTER_KEY": KEY}
    for name in ("GROQ_API_BASE", "ANTHROPIC_API_BASE", "OLLAMA_API_BASE", "OPENAI_API_BASE",
                 "AZURE_API_BASE", "AWS_ENDPOINT_URL", "MISTRAL_API_BASE", "XAI_API_BASE",
                 "OPENROUTER_API_BASE", "DEEPSEEK_API_BASE", "HOSTED_VLLM_API_BASE"):
        env[name] = decoy.url
    for name in ("GROQ_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "AZURE_API_KEY",
                 "MISTRAL_API_KEY", "AWS_BEARER_TOKEN_BEDROCK"):
        env[name] = f"{name.lower()}-must-stay-home"
    gateway = start_gateway(config, env, key=KEY)
    yield gateway
    gateway.stop()


def _arrivals(fake: FakeUpstream, model: str) -> list[dict]:
    return [r for r in fake.requests() if r["body"].get("model") == model]


@pytest.mark.parametrize("requested", [
    "groq/llama-wild", "anthropic/claude-wild", "ollama/llama3-wild", "ollama_chat/x-wild",
    "bedrock/anthropic.claude-wild", "azure/gpt-wild", "mistral/m-wild", "huggingface/h-wild",
    "plain-wild-model",
])
def test_star_template_keeps_its_upstream_and_key(gw: Gateway, fake_openai: FakeUpstream,
                                                  decoy: Receiver, requested: str) -> None:
    resp = gw.client().post("/v1/chat/completions", json={
        "model": requested, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    # The whole requested name is the model id, sent to the template's own upstream and key.
    [sent] = _arrivals(fake_openai, requested)
    assert sent["headers"]["authorization"] == f"Bearer {TEMPLATE_KEY}"
    assert resp.headers["x-laneway-model-group"] == "*"
    assert decoy.received == []


@pytest.mark.parametrize("tail", ["groq/x-tail", "anthropic/claude-tail", "gpt-tail"])
def test_prefixed_template_sends_the_tail(gw: Gateway, fake_openai: FakeUpstream,
                                          decoy: Receiver, tail: str) -> None:
    resp = gw.client().post("/v1/chat/completions", json={
        "model": f"openai/{tail}", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    [sent] = _arrivals(fake_openai, tail)
    assert sent["headers"]["authorization"] == f"Bearer {OPENAI_TEMPLATE_KEY}"
    assert resp.headers["x-laneway-model-group"] == "openai/*"
    assert decoy.received == []


def test_names_of_one_pattern_share_its_limit_and_line(gw: Gateway,
                                                       fake_openai: FakeUpstream) -> None:
    """max_parallel_requests: 1 on `*` holds for the template, not per requested name: a
    second name waits in the `*` line (seen in /queue/status) while the first is in flight."""
    client = gw.client()

    def ask(model: str) -> tuple[int, dict[str, str]]:
        r = client.post("/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": "hi"}]})
        return r.status_code, dict(r.headers)

    with concurrent.futures.ThreadPoolExecutor(2) as pool, fake_openai.gate("wildline"):
        first = pool.submit(ask, "held-name+gate=wildline")
        deadline = time.monotonic() + 10
        while not _arrivals(fake_openai, "held-name+gate=wildline"):
            assert time.monotonic() < deadline, "the first request never reached the upstream"
            time.sleep(0.02)
        second = pool.submit(ask, "other-name-same-pattern")
        waiting: dict = {}
        while time.monotonic() < deadline:
            status = client.get("/queue/status").json()
            waiting = {g["model_group"]: g["waiting"] for g in status["groups"]}
            if waiting.get("*"):
                break
            time.sleep(0.02)
        assert waiting == {"*": 1}
        assert not _arrivals(fake_openai, "other-name-same-pattern")
    (s1, h1), (s2, h2) = first.result(timeout=10), second.result(timeout=10)
    assert s1 == s2 == 200
    assert h1["x-laneway-model-group"] == h2["x-laneway-model-group"] == "*"
    # One template, one identity in shared state.
    assert h1["x-laneway-deployment-id"] == h2["x-laneway-deployment-id"]
    metrics = client.get("/metrics")  # the pattern, not the requested names, labels them
    assert metrics.status_code == 200
    assert 'model_group="*"' in metrics.text and "other-name-same-pattern" not in metrics.text


def test_non_ascii_and_path_like_names_are_served(gw: Gateway, fake_openai: FakeUpstream) -> None:
    for requested in ("modèle-日本語", "../../admin?x=1#frag", "a\u2028b"):
        resp = gw.client().post("/v1/chat/completions", content=orjson.dumps({
            "model": requested, "messages": [{"role": "user", "content": "hi"}]}),
            headers={"content-type": "application/json"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-laneway-model-group"] == "*"
        [sent] = _arrivals(fake_openai, requested)
        assert sent["path"] == "/v1/chat/completions"


def test_a_model_the_upstream_refuses_cools_down_only_a_fixed_deployment(
        fake_openai: FakeUpstream) -> None:
    """A wildcard passes the client's model id through, so an upstream's 404 (no such model),
    403 (not for this key) or 429 (that model's own limit) is about the request: the template
    keeps serving everyone else. The same answer for a model the config fixed is the
    deployment's fault (it is misconfigured) and cools it down; so does a native Responses
    request's 404, unless it named a previous response the upstream may not have.
    `max_queue_size: 0` makes a cooling deployment answer 429 at once instead of holding the
    next request in line."""
    config = {
        "model_list": [
            {"model_name": "openai/*", "litellm_params": {
                "model": "openai/*", "api_base": fake_openai.url, "api_key": "k"}},
            {"model_name": "fixed", "litellm_params": {
                "model": "openai/fixed+status=404", "api_base": fake_openai.url,
                "api_key": "k"}},
        ],
        "router_settings": {"num_retries": 0, "cooldown_time": 30, "max_queue_size": 0},
    }
    gateway = start_gateway(config)
    client = gateway.client()
    try:
        def chat(model: str) -> int:
            return client.post("/v1/chat/completions", json={
                "model": model, "messages": [{"role": "user", "content": "hi"}]}).status_code

        def respond(model: str, **extra: str) -> int:
            return client.post("/v1/responses",
                               json={"model": model, "input": "hi", **extra}).status_code

        assert chat("openai/missing+status=404") == 404
        assert chat("openai/denied+status=403") == 403
        assert chat("openai/limited+status=429") == 429  # that model's own limit...
        assert chat("openai/limited+retry_after=30") == 429  # ...even with a Retry-After
        assert respond("openai/missing+status=404") == 404
        assert chat("openai/gpt-4o") == 200  # served at once: nothing cooled down
        assert respond("fixed", previous_response_id="resp_unknown") == 404
        assert respond("fixed", previous_response_id="resp_unknown") == 404  # not cooled
        assert chat("fixed") == 404  # the config's model is missing: cooled down...
        assert chat("fixed") == 429  # ...for the next request
    finally:
        client.close()
        gateway.stop()
