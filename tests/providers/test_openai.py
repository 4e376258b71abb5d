"""The OpenAI adapter against the loopback fake OpenAI server, over real HTTP."""

from __future__ import annotations

import base64
import struct
import time

import httpx
import pytest

from router.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    RateLimited,
    RequestTimeout,
    UpstreamError,
    UpstreamUnavailable,
)
from router.providers.catalog import get_provider
from tests.providers.helpers import collect, context, deployment
from tests.support.fake_openai import DEFAULT_REPLY, FakeUpstream
from tests.support.procs import free_port

KEY = "sk-test-0123456789abcdef"
MESSAGES = [{"role": "user", "content": "say hello"}]


def openai_dep(fake: FakeUpstream, model: str = "gpt-4o-mini", **fields):
    fields.setdefault("api_key", KEY)
    return deployment("openai", model, api_base=fake.url, **fields)


async def test_chat_sends_openai_request_and_returns_completion(fake_openai, http):
    fake_openai.clear()
    dep = openai_dep(fake_openai, organization="org-42", extra_headers={"X-Team": "blue"})
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.2, "seed": 7}
    result = await get_provider("openai").chat(dep, body, context(http))
    assert result["object"] == "chat.completion"
    assert result["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert result["usage"]["total_tokens"] > 0
    [seen] = fake_openai.requests()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"] == body
    assert seen["headers"]["authorization"] == f"Bearer {KEY}"
    assert seen["headers"]["openai-organization"] == "org-42"
    assert seen["headers"]["x-team"] == "blue"


async def test_stream_yields_chunks_and_asks_upstream_for_usage(fake_openai, http):
    fake_openai.clear()
    dep = openai_dep(fake_openai)
    chunks = await collect(get_provider("openai").chat_stream(
        dep, {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}, context(http)))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == DEFAULT_REPLY
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    [seen] = fake_openai.requests()
    assert seen["body"]["stream"] is True
    assert seen["body"]["stream_options"] == {"include_usage": True}


async def test_stream_retries_without_stream_options_when_upstream_rejects_them(fake_openai, http):
    fake_openai.clear()
    dep = openai_dep(fake_openai, model="old-server+no_stream_options=1")
    chunks = await collect(get_provider("openai").chat_stream(
        dep, {"model": dep.model, "messages": MESSAGES, "stream": True}, context(http)))
    assert chunks and all(c["choices"] for c in chunks)  # no usage chunk from this server
    assert ["stream_options" in r["body"] for r in fake_openai.requests()] == [True, False]


async def test_text_completion_and_its_stream(fake_openai, http):
    dep = openai_dep(fake_openai, model="gpt-3.5-turbo-instruct")
    provider = get_provider("text-completion-openai")
    body = {"model": dep.model, "prompt": "Once upon", "max_tokens": 5}
    result = await provider.text_completion(dep, body, context(http))
    assert result["object"] == "text_completion"
    assert result["choices"][0]["text"] == DEFAULT_REPLY
    chunks = await collect(provider.text_completion_stream(dep, {**body, "stream": True},
                                                           context(http)))
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == DEFAULT_REPLY
    assert chunks[-1]["usage"]["prompt_tokens"] == 2


@pytest.mark.parametrize("encoding", ["float", "base64"])
async def test_embeddings_pass_through_in_either_encoding(fake_openai, http, encoding):
    dep = openai_dep(fake_openai, model="text-embedding-3-small")
    body = {"model": dep.model, "input": ["a", "b"], "encoding_format": encoding,
            "dimensions": 4}
    result = await get_provider("openai").embed(dep, body, context(http))
    assert [d["index"] for d in result["data"]] == [0, 1]
    vector = result["data"][0]["embedding"]
    if encoding == "base64":
        vector = list(struct.unpack("<4f", base64.b64decode(vector)))
    assert len(vector) == 4


@pytest.mark.parametrize(
    ("knobs", "error", "status"),
    [
        ("status=500", UpstreamError, 502),
        ("status=501", UpstreamError, 502),
        ("status=529", UpstreamError, 503),
        ("status=503", UpstreamError, 503),
        ("status=400+message=bad things", BadRequest, 400),
        ("error=context_length", ContextWindowExceeded, 400),
        ("error=content_filter", ContentPolicyViolation, 400),
        ("status=401", AuthenticationFailed, 401),
        # One request over the whole per-minute limit: not a rate limit to wait out.
        ("status=429+message=Request too large for gpt-4o in organization org-x on tokens "
         "per min (TPM): Limit 30000, Requested 36004.", BadRequest, 413),
    ],
)
async def test_upstream_errors_become_laneway_errors(fake_openai, http, knobs, error, status):
    dep = openai_dep(fake_openai, model=f"gpt-4o+{knobs}")
    with pytest.raises(error) as caught:
        await get_provider("openai").chat(dep, {"model": dep.model, "messages": MESSAGES},
                                          context(http))
    assert type(caught.value) is error
    assert caught.value.status == status
    assert caught.value.retryable == (status >= 500)


async def test_rate_limit_carries_retry_after(fake_openai, http):
    dep = openai_dep(fake_openai, model="gpt-4o+retry_after=3")
    with pytest.raises(RateLimited) as caught:
        await get_provider("openai").chat(dep, {"model": dep.model, "messages": MESSAGES},
                                          context(http))
    assert caught.value.retry_after == 3.0 and caught.value.retryable


async def test_errors_at_stream_start_are_raised_from_the_iterator(fake_openai, http):
    dep = openai_dep(fake_openai, model="gpt-4o+error=context_length")
    with pytest.raises(ContextWindowExceeded):
        await collect(get_provider("openai").chat_stream(
            dep, {"model": dep.model, "messages": MESSAGES, "stream": True}, context(http)))


async def test_an_echoed_key_never_reaches_the_error_message(fake_openai, http):
    dep = openai_dep(fake_openai, model=f"gpt-4o+status=401+message=Incorrect key {KEY} given")
    with pytest.raises(AuthenticationFailed) as caught:
        await get_provider("openai").chat(dep, {"model": dep.model, "messages": MESSAGES},
                                          context(http))
    assert KEY not in caught.value.message and "[redacted]" in caught.value.message
    assert KEY not in str(caught.value.body())


async def test_slow_upstream_is_a_timeout(fake_openai, http):
    dep = openai_dep(fake_openai, model="gpt-4o+delay=2")
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        await get_provider("openai").chat(dep, {"model": dep.model, "messages": MESSAGES},
                                          context(http, timeout=0.3))
    assert time.monotonic() - started < 1.5


async def test_stall_between_stream_chunks_is_a_timeout(fake_openai, http):
    dep = openai_dep(fake_openai, model="gpt-4o+chunk_delay=1")
    with pytest.raises(RequestTimeout):
        await collect(get_provider("openai").chat_stream(
            dep, {"model": dep.model, "messages": MESSAGES, "stream": True},
            context(http, timeout=5, stream_timeout=0.2)))


async def test_cut_stream_is_upstream_unavailable(fake_openai, http):
    dep = openai_dep(fake_openai, model="gpt-4o+cut_after=2")
    with pytest.raises(UpstreamUnavailable):
        await collect(get_provider("openai").chat_stream(
            dep, {"model": dep.model, "messages": MESSAGES, "stream": True}, context(http)))


async def test_refused_connection_is_upstream_unavailable(http):
    dep = deployment("openai", "gpt-4o", api_base=f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(UpstreamUnavailable) as caught:
        await get_provider("openai").chat(dep, {"model": "gpt-4o", "messages": MESSAGES},
                                          context(http))
    assert caught.value.retryable


async def test_tool_calls_come_back_in_openai_shape(fake_openai, http):
    dep = openai_dep(fake_openai)
    tools = [{"type": "function", "function": {"name": "get_weather",
                                               "parameters": {"type": "object"}}}]
    result = await get_provider("openai").chat(
        dep, {"model": dep.model, "messages": MESSAGES, "tools": tools}, context(http))
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


async def test_hosted_prefix_uses_its_env_base_and_key(fake_openai, http, monkeypatch):
    fake_openai.clear()
    monkeypatch.setenv("HOSTED_VLLM_API_BASE", fake_openai.url)
    monkeypatch.setenv("HOSTED_VLLM_API_KEY", "vllm-key-123")
    dep = deployment("hosted_vllm", "meta-llama/Llama-3-8B")
    await get_provider("hosted_vllm").chat(dep, {"model": dep.model, "messages": MESSAGES},
                                           context(http))
    [seen] = fake_openai.requests()
    assert seen["headers"]["authorization"] == "Bearer vllm-key-123"


def test_hosted_prefixes_have_default_urls_and_keys(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk-from-env")
    provider = get_provider("groq")
    dep = deployment("groq", "llama3-70b-8192")
    assert provider.url(dep, "chat/completions") == (
        "https://api.groq.com/openai/v1/chat/completions")
    assert provider.headers(dep)["authorization"] == "Bearer gsk-from-env"


def test_openai_env_key_is_not_sent_to_a_custom_api_base(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key")
    provider = get_provider("openai")
    assert "authorization" not in provider.headers(
        deployment("openai", "llama", api_base="http://vllm.internal:8000/v1"))
    assert provider.headers(deployment("openai", "gpt-4o"))["authorization"] == (
        "Bearer sk-real-openai-key")


async def test_connection_pool_is_reused_across_calls(fake_openai):
    # One client serves many calls: the adapter never opens a client of its own.
    dep = openai_dep(fake_openai)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(20):
            await get_provider("openai").chat(dep, {"model": dep.model, "messages": MESSAGES},
                                              context(client))
