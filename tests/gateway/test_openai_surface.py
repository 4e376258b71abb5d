"""The OpenAI-compatible surface, driven with the official `openai` SDK against a real gateway
process whose upstream is a loopback fake OpenAI server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, start_gateway

KEY = "sk-master-test-0123456789"
UPSTREAM_KEY = "sk-upstream-secret-abcdef123456"


@pytest.fixture(scope="module")
def gw(fake_openai: FakeUpstream) -> Iterator[Gateway]:
    base = fake_openai.url
    config = {
        "model_list": [
            {"model_name": "gpt-4o", "litellm_params": {
                "model": "openai/gpt-4o-2024", "api_base": base,
                "api_key": "os.environ/TEST_UPSTREAM_KEY", "temperature": 0.25, "seed": 7}},
            {"model_name": "balanced", "litellm_params": {
                "model": "openai/left", "api_base": base, "api_key": "x", "rpm": 100}},
            {"model_name": "balanced", "litellm_params": {
                "model": "openai/right", "api_base": base, "api_key": "x", "rpm": 100}},
            {"model_name": "flaky", "litellm_params": {
                "model": "openai/flaky+fail_first=1+status=503", "api_base": base,
                "api_key": "x"}},
            {"model_name": "broken", "litellm_params": {
                "model": "openai/broken+status=500", "api_base": base, "api_key": "x"}},
            {"model_name": "slow", "litellm_params": {
                "model": "openai/slow+delay=2", "api_base": base, "api_key": "x",
                "timeout": 0.3}},
            {"model_name": "drip", "litellm_params": {
                "model": "openai/drip+chunk_delay=0.25+reply=one two three four",
                "api_base": base, "api_key": "x"}},
            {"model_name": "openai/*", "litellm_params": {
                "model": "openai/*", "api_base": base, "api_key": "x"}},
            {"model_name": "orgs", "litellm_params": {
                "model": "openai/org-model", "api_base": base, "api_key": "x",
                "organization": ["org-a", "org-b", "org-c"]}},
            {"model_name": "staging-only", "litellm_params": {
                "model": "openai/staging", "api_base": base, "api_key": "x"},
             "model_info": {"supported_environments": ["staging"]}},
            {"model_name": "mocked", "litellm_params": {
                "model": "gpt-4o-mini", "mock_response": "mocked answer"}},
        ],
        "router_settings": {"num_retries": 1, "model_group_alias": {"gpt-4": "gpt-4o"}},
        "general_settings": {"master_key": "os.environ/TEST_MASTER_KEY"},
    }
    env = {"TEST_UPSTREAM_KEY": UPSTREAM_KEY, "TEST_MASTER_KEY": KEY,
           "LITELLM_ENVIRONMENT": "production"}
    gateway = start_gateway(config, env, key=KEY)
    yield gateway
    gateway.stop()


def last_request(fake: FakeUpstream, model: str) -> dict:
    return [r for r in fake.requests() if r["body"].get("model") == model][-1]


def test_chat_completion_round_trip(gw: Gateway, fake_openai: FakeUpstream) -> None:
    client = gw.openai()
    resp = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
        extra_body={"priority": 3, "metadata": {"team": "a"}},
    )
    completion = resp.parse()
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert completion.usage.total_tokens > 0
    assert resp.headers["x-laneway-model-group"] == "gpt-4o"
    assert len(resp.headers["x-laneway-deployment-id"]) == 16
    sent = last_request(fake_openai, "gpt-4o-2024")
    # Deployment defaults are merged in, laneway's own fields never leave the gateway;
    # OpenAI's own `metadata` (string pairs) does.
    assert sent["body"]["temperature"] == 0.25 and sent["body"]["seed"] == 7
    assert "priority" not in sent["body"] and sent["body"]["metadata"] == {"team": "a"}
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_client_params_win_over_deployment_defaults(gw: Gateway, fake_openai) -> None:
    gw.openai().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], temperature=0.9)
    assert last_request(fake_openai, "gpt-4o-2024")["body"]["temperature"] == 0.9


def test_alias_and_wildcard(gw: Gateway, fake_openai: FakeUpstream) -> None:
    client = gw.openai()
    client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "x"}])
    assert last_request(fake_openai, "gpt-4o-2024")
    r = client.chat.completions.with_raw_response.create(
        model="openai/gpt-anything", messages=[{"role": "user", "content": "x"}])
    # A wildcard's group is its pattern: every name it matches waits in that one line.
    assert r.headers["x-laneway-model-group"] == "openai/*"
    assert last_request(fake_openai, "gpt-anything")


def test_streaming_is_relayed_chunk_by_chunk(gw: Gateway) -> None:
    client = gw.openai()
    started = time.monotonic()
    arrivals, text = [], []
    for chunk in client.chat.completions.create(
        model="drip", messages=[{"role": "user", "content": "x"}], stream=True
    ):
        arrivals.append(time.monotonic() - started)
        assert chunk.usage is None  # the client did not ask for usage
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
    assert "".join(text).split() == ["one", "two", "three", "four"]
    # Not buffered: the first chunk arrived long before the last.
    assert arrivals[-1] - arrivals[0] > 0.5


def test_stream_include_usage(gw: Gateway) -> None:
    chunks = list(gw.openai().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].choices == []


def test_text_completion_and_embeddings(gw: Gateway) -> None:
    client = gw.openai()
    done = client.completions.create(model="gpt-4o", prompt="Say hi")
    assert done.choices[0].text
    emb = client.embeddings.create(model="gpt-4o", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) > 0


def test_load_is_balanced_across_deployments(gw: Gateway, fake_openai) -> None:
    client = gw.openai()
    for _ in range(30):
        client.chat.completions.create(model="balanced",
                                       messages=[{"role": "user", "content": "x"}])
    models = [r["body"]["model"] for r in fake_openai.requests()]
    assert models.count("left") >= 5 and models.count("right") >= 5


def test_retry_goes_through_after_a_transient_failure(gw: Gateway, fake_openai) -> None:
    resp = gw.openai().chat.completions.create(
        model="flaky", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content
    assert fake_openai.counts()["flaky+fail_first=1+status=503"] == 2


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
    ("/v1/responses", {"input": "x"}),
    ("/v1/messages", {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    ("/utils/token_counter", {"prompt": "x"}),
])
def test_an_absurd_model_name_is_not_sent_back_whole(gw: Gateway, path: str, body: dict) -> None:
    with gw.client() as c:
        r = c.post(path, json={"model": "m" * 100_000, **body})
    assert r.status_code == 404 and len(r.content) < 2_000, (r.status_code, len(r.content))


def test_an_upstreams_500_is_a_bad_gateway_with_an_openai_body(gw: Gateway) -> None:
    with gw.client() as c:
        r = c.post("/v1/chat/completions",
                   json={"model": "broken", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 502  # the upstream broke, not laneway
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "HTTP 500" in err["message"]
    assert "Traceback" not in r.text


def test_upstream_timeout_is_408(gw: Gateway) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        gw.openai().chat.completions.create(model="slow",
                                            messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 408
    assert info.value.body["type"] == "timeout"


def test_auth(gw: Gateway) -> None:
    with httpx.Client(base_url=gw.url) as c:
        for headers in ({}, {"authorization": "Bearer wrong"}):
            r = c.post("/v1/chat/completions", headers=headers,
                       json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code == 401
            assert r.json()["error"]["type"] == "authentication_error"
            assert KEY not in r.text
        assert c.get("/health/liveliness").status_code == 200
        assert c.get("/health/readiness").json()["status"] == "healthy"
        assert c.get("/health").status_code == 401
        assert c.get("/v1/models").status_code == 401
        assert c.get("/health", headers=gw.headers()).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gw.url}/v1", api_key="nope", max_retries=0).models.list()


def test_master_key_in_x_api_key_beside_a_foreign_authorization(gw: Gateway) -> None:
    # Behind a Function URL with AWS_IAM auth, Authorization carries the AWS signature.
    headers = {"authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1",
               "x-api-key": KEY}
    with httpx.Client(base_url=gw.url) as c:
        assert c.get("/v1/models", headers=headers).status_code == 200
        headers["x-api-key"] = "wrong"
        assert c.get("/v1/models", headers=headers).status_code == 401

def test_bad_input(gw: Gateway) -> None:
    with gw.client() as c:
        r = c.post("/v1/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
        r = c.post("/v1/chat/completions", json={"model": "gpt-4o"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
        r = c.post("/v1/chat/completions",
                   json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}],
                         "priority": "high"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "priority"
        r = c.post("/v1/chat/completions",
                   json={"model": "nope", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 404
        assert "gpt-4o" in r.json()["error"]["message"]  # lists the available models
        assert c.get("/no/such/route").status_code == 404


def test_models_and_model_info_hide_secrets(gw: Gateway) -> None:
    client = gw.openai()
    names = {m.id for m in client.models.list()}
    assert {"gpt-4o", "balanced", "gpt-4", "orgs", "mocked"} <= names
    assert "staging-only" not in names  # LITELLM_ENVIRONMENT=production filters it out
    with gw.client() as c:
        info = c.get("/v1/model/info")
    assert info.status_code == 200
    assert UPSTREAM_KEY not in info.text and "api_key" not in info.text
    orgs = [d for d in info.json()["data"] if d["model_name"] == "orgs"]
    assert sorted(d["litellm_params"]["organization"] for d in orgs) == ["org-a", "org-b",
                                                                         "org-c"]
    assert len({d["model_info"]["id"] for d in orgs}) == 3


def test_organization_fan_out_sends_each_org(gw: Gateway, fake_openai) -> None:
    client = gw.openai()
    for _ in range(24):
        client.chat.completions.create(model="orgs", messages=[{"role": "user", "content": "x"}])
    sent = {r["headers"].get("openai-organization") for r in fake_openai.requests()
            if r["body"].get("model") == "org-model"}
    assert sent == {"org-a", "org-b", "org-c"}


def test_mock_response_deployment(gw: Gateway) -> None:
    resp = gw.openai().chat.completions.create(
        model="mocked", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content == "mocked answer"


def test_docs_served_and_no_secret_in_logs(gw: Gateway) -> None:
    with gw.client() as c:
        assert c.get("/docs").status_code == 200
        # FastAPI's OpenAPI models are built on this first use, not at import (cold start).
        spec = c.get("/openapi.json")
        assert spec.status_code == 200
        assert "/v1/chat/completions" in spec.json()["paths"]
    out = gw.stop()
    assert "laneway serving model groups: gpt-4o, balanced" in out
    assert UPSTREAM_KEY not in out and KEY not in out

