"""A model name that ends up in a URL path is one percent-encoded segment, whatever a client
sends through a wildcard: `../`, `?`, `#` and non-ASCII text can neither reach another path or
query of the upstream nor turn into a 500."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import orjson
import pytest

from tests.providers.conftest import BEDROCK_SECRET
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.receivers import Received, Receiver

NASTY = ["../../admin?x=1#frag", "..", ".", "modèle-日本語", "a b/c%2Fd", "x?api-version=evil"]


def _chat_reply(_: Received) -> tuple[int, bytes, str]:
    return 200, orjson.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}), \
        "application/json"


@pytest.fixture(scope="module")
def azure_upstream() -> Iterator[Receiver]:
    with Receiver(_chat_reply).start() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def paths_gateway(azure_upstream: Receiver, fake_bedrock: FakeUpstream) -> Iterator[Gateway]:
    config = {"model_list": [
        {"model_name": "azure/*", "litellm_params": {
            "model": "azure/*", "api_base": azure_upstream.url, "api_key": "azure-path-key-01",
            "api_version": "2024-06-01"}},
        {"model_name": "bedrock/*", "litellm_params": {
            "model": "bedrock/*", "aws_access_key_id": "AKIDPATHTEST00000001",
            "aws_secret_access_key": BEDROCK_SECRET, "aws_region_name": "us-west-2",
            "aws_bedrock_runtime_endpoint": fake_bedrock.base}},
    ], "router_settings": {"num_retries": 0}}
    gateway = start_gateway(config, clean_env())
    yield gateway
    gateway.stop()


def _ask(gw: Gateway, model: str) -> None:
    resp = gw.client().post("/v1/chat/completions", content=orjson.dumps({
        "model": model, "messages": [{"role": "user", "content": "hi"}]}),
        headers={"content-type": "application/json"})
    assert resp.status_code == 200, (model, resp.text)


@pytest.mark.parametrize("name", NASTY)
def test_azure_deployment_path_is_one_segment(paths_gateway: Gateway, azure_upstream: Receiver,
                                              name: str) -> None:
    azure_upstream.clear()
    _ask(paths_gateway, f"azure/{name}")
    [got] = azure_upstream.received
    target = urlsplit(got.path)
    parts = target.path.split("/")
    assert parts[:3] == ["", "openai", "deployments"]
    assert parts[4:] == ["chat", "completions"]
    assert unquote(parts[3]) == name
    assert parts[3] not in (".", "..")  # a dot-segment would be resolved away by the server
    assert target.query == "api-version=2024-06-01" and not target.fragment


@pytest.mark.parametrize("name", NASTY)
def test_bedrock_model_path_is_one_segment(paths_gateway: Gateway, fake_bedrock: FakeUpstream,
                                           name: str) -> None:
    fake_bedrock.clear()
    _ask(paths_gateway, f"bedrock/{name}")  # the fake matches /model/<one segment>/converse
    [got] = fake_bedrock.requests()
    assert got["model_id"] == name and got["action"] == "converse"
