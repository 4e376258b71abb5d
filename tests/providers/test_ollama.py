"""The Ollama adapter against a fake Ollama server (native API, NDJSON streams)."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from router.errors import BadRequest, ContextWindowExceeded, NotFound
from router.providers.catalog import get_provider
from tests.providers.helpers import collect, context, deployment
from tests.support.fake_openai import DEFAULT_REPLY

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
LLAMA2 = {
    "initial_prompt_value": "<<START>>",
    "roles": {"system": {"pre_message": "[INST] <<SYS>>\n", "post_message": "\n<</SYS>>\n"},
              "user": {"pre_message": "", "post_message": " [/INST]"},
              "assistant": {"pre_message": " ", "post_message": " "}},
    "final_prompt_value": "<<END>>",
    "bos_token": "<s>",
    "eos_token": "</s>",
}


def dep(fake, provider="ollama_chat", model="llama3", **fields):
    return deployment(provider, model, api_base=fake.base, **fields)


async def test_chat_maps_params_to_options(fake_ollama, http):
    fake_ollama.clear()
    body = {"model": "llama3", "messages": MESSAGES, "temperature": 0.3, "max_tokens": 20,
            "stop": "###", "seed": 1, "response_format": {"type": "json_object"}}
    result = await get_provider("ollama_chat").chat(dep(fake_ollama), body, context(http))
    assert result["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert result["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    [seen] = fake_ollama.requests()
    assert seen["path"] == "/api/chat"
    assert seen["body"]["stream"] is False and seen["body"]["format"] == "json"
    assert seen["body"]["options"] == {"temperature": 0.3, "num_predict": 20, "stop": ["###"],
                                       "seed": 1}


async def test_stream_ndjson_to_chunks(fake_ollama, http):
    chunks = await collect(get_provider("ollama").chat_stream(
        dep(fake_ollama, "ollama"), {"messages": MESSAGES}, context(http)))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == DEFAULT_REPLY
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert len({c["id"] for c in chunks}) == 1


async def test_tool_calls_become_openai_tool_calls(fake_ollama, http):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    result = await get_provider("ollama_chat").chat(
        dep(fake_ollama), {"messages": MESSAGES, "tools": tools}, context(http))
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    chunks = await collect(get_provider("ollama_chat").chat_stream(
        dep(fake_ollama), {"messages": MESSAGES, "tools": tools}, context(http)))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert any(d.get("tool_calls") for d in deltas)
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_custom_template_builds_the_exact_raw_prompt(fake_ollama, http):
    fake_ollama.clear()
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Bye"}]
    d = dep(fake_ollama, "ollama", "llama2+echo=1", params=LLAMA2)
    result = await get_provider("ollama").chat(d, {"messages": messages}, context(http))
    expected = ("<s><<START>>[INST] <<SYS>>\nBe brief.\n<</SYS>>\nHi [/INST] Hello! </s>"
                "<s>Bye [/INST]<<END>>")
    [seen] = fake_ollama.requests()
    assert seen["path"] == "/api/generate" and seen["body"]["raw"] is True
    assert seen["body"]["prompt"] == expected
    assert result["choices"][0]["message"]["content"] == expected


async def test_text_completion_and_stream_use_generate(fake_ollama, http):
    provider = get_provider("ollama")
    result = await provider.text_completion(dep(fake_ollama, "ollama", "llama3+echo=1"),
                                            {"prompt": "The sky is"}, context(http))
    assert result["object"] == "text_completion" and result["choices"][0]["text"] == "The sky is"
    chunks = await collect(provider.text_completion_stream(
        dep(fake_ollama, "ollama"), {"prompt": "Go"}, context(http)))
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == DEFAULT_REPLY


@pytest.mark.parametrize("fmt", ["float", "base64"])
async def test_embeddings(fake_ollama, http, fmt):
    result = await get_provider("ollama").embed(
        dep(fake_ollama, "ollama", "nomic-embed-text"),
        {"input": ["ab", "abcd"], "encoding_format": fmt}, context(http))
    vectors = [d["embedding"] for d in result["data"]]
    if fmt == "base64":
        vectors = [list(struct.unpack("<4f", base64.b64decode(v))) for v in vectors]
    assert vectors[0] == pytest.approx([0.2, 0.3, 0.4, 0.5])
    assert vectors[1][0] == pytest.approx(0.4)
    assert result["usage"]["prompt_tokens"] == 2


async def test_errors(fake_ollama, http):
    with pytest.raises(NotFound) as caught:
        await get_provider("ollama").chat(dep(fake_ollama, "ollama", "nope+missing=1"),
                                          {"messages": MESSAGES}, context(http))
    assert "not found" in caught.value.message
    with pytest.raises(ContextWindowExceeded):
        await get_provider("ollama").embed(dep(fake_ollama, "ollama", "e+error=context_length"),
                                           {"input": "x"}, context(http))
    with pytest.raises(BadRequest) as bad:
        await get_provider("ollama").chat(dep(fake_ollama), {"messages": MESSAGES,
                                                             "logit_bias": {"1": 2}},
                                          context(http))
    assert bad.value.param == "logit_bias"
    result = await get_provider("ollama").chat(
        dep(fake_ollama), {"messages": MESSAGES, "logit_bias": {"1": 2}},
        context(http, drop_params=True))
    assert result["choices"][0]["message"]["content"] == DEFAULT_REPLY
