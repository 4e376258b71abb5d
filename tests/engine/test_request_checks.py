"""Request params the engine reads itself are checked before use: a bad one is a 400 naming
it, never a 500 and never a request that heads the line until its timeout."""

from __future__ import annotations

import time
from typing import Any

import pytest

from router import Router
from router.errors import BadRequest
from router.router import PRIORITY_LIMIT
from tests.support.scripted_upstream import completion, raw, scripted_upstream

pytestmark = pytest.mark.asyncio(loop_scope="function")

MOCK = [{"model_name": "m", "litellm_params": {"model": "gpt-4o", "mock_response": "ok"}},
        {"model_name": "limited", "litellm_params": {
            "model": "gpt-4o", "mock_response": "ok", "tpm": 1000}},
        {"model_name": "limited", "litellm_params": {
            "model": "gpt-4o-mini", "mock_response": "ok", "tpm": 2000}}]


def chat(model: str = "m", **kw: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **kw}


@pytest.mark.parametrize("priority", ["--5", "5-", "", " ", "1e3", "0x10", 1.5, True, False,
                                      [], {}, PRIORITY_LIMIT + 1, -PRIORITY_LIMIT - 1,
                                      "9" * 40, 10**30])
async def test_bad_priority_is_a_400(priority: Any) -> None:
    router = Router(model_list=MOCK)
    with pytest.raises(BadRequest) as info:
        await router.serve("chat", chat(priority=priority))
    assert info.value.param == "priority"
    await router.aclose()


@pytest.mark.parametrize("priority", [0, PRIORITY_LIMIT, -PRIORITY_LIMIT, "7", " -3 ", "+4"])
async def test_priority_in_range_is_served(priority: Any) -> None:
    router = Router(model_list=MOCK)
    _, record = await router.serve("chat", chat(priority=priority))
    assert record.priority == int(str(priority).strip())
    await router.aclose()


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [0, -1, "100", 1.5, True, [], {}, 2**40])
async def test_max_tokens_must_be_a_positive_integer(name: str, value: Any) -> None:
    router = Router(model_list=MOCK)
    for model in ("m", "limited"):  # tpm-limited groups read it to reserve tokens
        with pytest.raises(BadRequest) as info:
            await router.serve("chat", chat(model, **{name: value}))
        assert info.value.param == name
    await router.aclose()


@pytest.mark.parametrize("options", ["yes", 1, [], True])
async def test_stream_options_must_be_an_object(options: Any) -> None:
    router = Router(model_list=MOCK)
    with pytest.raises(BadRequest) as info:
        await router.serve("chat", chat(stream=True, stream_options=options))
    assert info.value.param == "stream_options"
    await router.aclose()


@pytest.mark.parametrize("content", [5, {"text": "x"}, [5, None, {"type": "text"}], None])
async def test_odd_message_content_on_a_tpm_group_is_counted_not_a_crash(content: Any) -> None:
    router = Router(model_list=MOCK)
    body = {"model": "limited", "messages": [{"role": "user", "content": content},
                                             {"role": "assistant", "tool_calls": [5, {}]}]}
    served, _ = await router.serve("chat", body)
    assert served.response["choices"][0]["message"]["content"] == "ok"  # type: ignore[index]
    await router.aclose()


async def test_request_larger_than_every_tpm_is_refused_at_once() -> None:
    router = Router(model_list=MOCK, timeout=60)
    started = time.monotonic()
    with pytest.raises(BadRequest) as info:
        await router.serve("chat", chat("limited", max_tokens=5000))
    assert time.monotonic() - started < 10  # at once, not after heading the line for 60 s
    assert "2000" in info.value.message and info.value.param == "max_tokens"
    served, _ = await router.serve("chat", chat("limited", max_tokens=1500))  # fits one
    assert served.deployment.model == "gpt-4o-mini"
    await router.aclose()


async def test_request_mocks_can_be_turned_off() -> None:
    from router.config import parse_config

    config = parse_config({"model_list": MOCK,
                           "general_settings": {"allow_client_side_mock_response": False}})
    router = Router.from_config(config)
    with pytest.raises(BadRequest) as info:
        await router.serve("chat", chat(mock_response="free answer"))
    assert info.value.param == "mock_response"
    served, _ = await router.serve("chat", chat())  # the deployment's own mock still answers
    assert served.response["choices"][0]["message"]["content"] == "ok"  # type: ignore[index]
    await router.aclose()


def recording(seen: list[dict[str, Any]]) -> Any:
    """A script answering a plain completion and keeping every request body it received."""
    async def record(body: dict[str, Any], w: Any) -> None:
        seen.append(body)
        await raw(200, completion())(body, w)

    return record


async def test_extra_body_and_drop_params_of_a_deployment() -> None:
    seen: list[dict[str, Any]] = []
    async with scripted_upstream({"vllm-model": recording(seen)}) as up:
        router = Router(model_list=[{"model_name": "m", "litellm_params": {
            "model": "openai/vllm-model", "api_base": up.url, "api_key": "k-123456",
            "extra_body": {"guided_choice": ["a", "b"], "top_k": 5},
            "drop_params": ["logit_bias", "seed"]}}])
        await router.serve("chat", chat(seed=1, logit_bias={"1": 2}, top_k=99, temperature=0))
        await router.aclose()
    (body,) = seen
    assert body["guided_choice"] == ["a", "b"] and body["top_k"] == 5
    assert "seed" not in body and "logit_bias" not in body and body["temperature"] == 0


async def test_metadata_is_forwarded_only_in_openai_shape() -> None:
    seen: list[dict[str, Any]] = []
    async with scripted_upstream({"gpt": recording(seen)}) as up:
        router = Router(model_list=[{"model_name": "m", "litellm_params": {
            "model": "openai/gpt", "api_base": up.url, "api_key": "k-123456"}}])
        await router.serve("chat", chat(metadata={"app": "billing"}))
        await router.serve("chat", chat(metadata={"tags": ["a"], "trace_id": "t"}))
        await router.aclose()
    assert seen[0]["metadata"] == {"app": "billing"}
    assert "metadata" not in seen[1]  # LiteLLM-style metadata stays for logs and callbacks


@pytest.mark.parametrize("dims", [":", 0, -3, 1.5, True, [], 10**9])
async def test_embedding_dimensions_must_be_a_positive_integer(dims: Any) -> None:
    router = Router(model_list=MOCK)
    with pytest.raises(BadRequest) as info:
        await router.serve("embed", {"model": "m", "input": "hi", "dimensions": dims})
    assert info.value.param == "dimensions"
    served, _ = await router.serve("embed", {"model": "m", "input": "hi", "dimensions": 8})
    assert len(served.response["data"][0]["embedding"]) == 8  # type: ignore[index]
    await router.aclose()
