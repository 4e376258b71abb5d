"""The rest of the surface clients expect: `GET /v1/models/{model}` and client headers
forwarded upstream under `general_settings.forward_client_headers_to_llm_api`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, start_gateway


@pytest.fixture(scope="module")
def fwd_gw(fake_openai: FakeUpstream) -> Iterator[Gateway]:
    config = {
        "model_list": [
            {"model_name": "fwd", "litellm_params": {
                "model": "hosted_vllm/fwd-fake", "api_base": fake_openai.url,
                "api_key": "sk-upstream-fwd-0123"}},
            {"model_name": "vendor/*", "litellm_params": {
                "model": "hosted_vllm/*", "api_base": fake_openai.url, "api_key": "x"}},
        ],
        "general_settings": {"forward_client_headers_to_llm_api": [
            "x-trace-id", "x-team-*", "authorization", "x-api-key", "connection",
            "x-laneway-priority"]},
    }
    gateway = start_gateway(config)
    yield gateway
    gateway.stop()


def test_model_lookup(fwd_gw: Gateway) -> None:
    client = fwd_gw.openai()
    model = client.models.retrieve("fwd")
    assert (model.id, model.object, model.owned_by) == ("fwd", "model", "laneway")
    assert client.models.retrieve("vendor/some-model").id == "vendor/some-model"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("absent")
    error = info.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"  # type: ignore[index]


def _sent(fake: FakeUpstream, marker: str) -> dict[str, str]:
    [request] = [r for r in fake.requests() if r["body"].get("model") == "fwd-fake"
                 and marker in str(r["body"])]
    return request["headers"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
def test_only_allowed_client_headers_reach_the_upstream(
        fwd_gw: Gateway, fake_openai: FakeUpstream, path: str) -> None:
    marker = f"forward-check {path}"
    body = {"/v1/chat/completions": {"messages": [{"role": "user", "content": marker}]},
            "/v1/responses": {"input": marker},
            "/v1/messages": {"max_tokens": 10,
                             "messages": [{"role": "user", "content": marker}]}}[path]
    r = httpx.post(fwd_gw.url + path, json={"model": "fwd", **body}, timeout=10, headers={
        "x-trace-id": "trace-1", "x-team-name": "blue", "x-other": "no",
        "authorization": "Bearer client-secret-key", "x-api-key": "client-secret-key",
        "x-laneway-priority": "1"})
    assert r.status_code == 200
    sent = _sent(fake_openai, marker)
    assert sent["x-trace-id"] == "trace-1" and sent["x-team-name"] == "blue"
    assert "x-other" not in sent and "x-laneway-priority" not in sent
    # Credentials are never forwarded, even when the list names them: the upstream gets the
    # deployment's own key.
    assert sent["authorization"] == "Bearer sk-upstream-fwd-0123"
    assert "x-api-key" not in sent
