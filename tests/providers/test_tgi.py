"""The Hugging Face TGI adapter: OpenAI route for chat, /generate for templates and prompts."""

from __future__ import annotations

import pytest

from router.errors import BadRequest, ContextWindowExceeded, RateLimited
from router.providers.catalog import get_provider
from router.tokens import counter_for
from tests.providers.helpers import collect, context, deployment
from tests.support.fake_openai import DEFAULT_REPLY

MESSAGES = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello"}]
CHATML = {"roles": {"system": {"pre_message": "<|im_start|>system\n",
                               "post_message": "<|im_end|>\n"},
                    "user": {"pre_message": "<|im_start|>user\n", "post_message": "<|im_end|>\n"}},
          "final_prompt_value": "<|im_start|>assistant\n"}


def dep(fake, model="mistralai/Mistral-7B-Instruct", knobs: str | None = None, **fields):
    headers = {"x-fake": knobs} if knobs else {}
    return deployment("huggingface", model, api_base=fake.base, api_key="hf_test_key_123",
                      extra_headers=headers, **fields)


async def test_chat_without_template_uses_the_openai_route(fake_tgi, http):
    fake_tgi.clear()
    result = await get_provider("huggingface").chat(dep(fake_tgi), {
        "model": "tgi", "messages": MESSAGES}, context(http))
    assert result["choices"][0]["message"]["content"] == DEFAULT_REPLY
    [seen] = fake_tgi.requests()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == "Bearer hf_test_key_123"


async def test_chat_with_template_sends_the_exact_prompt_to_generate(fake_tgi, http):
    fake_tgi.clear()
    d = dep(fake_tgi, knobs="echo=1", params=CHATML)
    body = {"messages": MESSAGES, "temperature": 0, "top_p": 1, "max_tokens": 200, "seed": 4,
            "stop": "<|im_end|>"}
    result = await get_provider("huggingface").chat(d, body, context(http))
    prompt = ("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
              "<|im_start|>assistant\n")
    [seen] = fake_tgi.requests()
    assert seen["path"] == "/generate" and seen["body"]["inputs"] == prompt
    assert seen["body"]["parameters"] == {"details": True, "max_new_tokens": 200,
                                          "do_sample": False, "seed": 4,
                                          "stop": ["<|im_end|>"]}
    assert result["object"] == "chat.completion"
    assert result["choices"][0]["message"]["content"] == prompt
    assert result["usage"]["prompt_tokens"] == counter_for(d.model).text(prompt)


async def test_generate_stream_skips_special_tokens_and_reports_finish(fake_tgi, http):
    d = dep(fake_tgi, params=CHATML)
    chunks = await collect(get_provider("huggingface").chat_stream(
        d, {"messages": MESSAGES, "max_tokens": 3}, context(http)))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from the"
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_text_completion_uses_generate(fake_tgi, http):
    fake_tgi.clear()
    provider = get_provider("huggingface")
    result = await provider.text_completion(dep(fake_tgi), {"prompt": "Once"}, context(http))
    assert result["object"] == "text_completion"
    assert result["choices"][0]["text"] == DEFAULT_REPLY
    assert result["choices"][0]["finish_reason"] == "stop"
    chunks = await collect(provider.text_completion_stream(dep(fake_tgi), {"prompt": "Once"},
                                                           context(http)))
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == DEFAULT_REPLY
    assert [r["path"] for r in fake_tgi.requests()] == ["/generate", "/generate_stream"]


async def test_openai_route_stream_and_embeddings(fake_tgi, http):
    provider = get_provider("huggingface")
    chunks = await collect(provider.chat_stream(dep(fake_tgi), {"model": "tgi",
                                                                "messages": MESSAGES},
                                                context(http)))
    assert chunks[-1]["usage"]["total_tokens"] > 0
    emb = await provider.embed(dep(fake_tgi), {"model": "bge", "input": "x"}, context(http))
    assert emb["data"][0]["object"] == "embedding"


async def test_errors(fake_tgi, http):
    provider = get_provider("huggingface")
    with pytest.raises(ContextWindowExceeded):
        await provider.text_completion(dep(fake_tgi, knobs="error=context_length"),
                                       {"prompt": "x"}, context(http))
    with pytest.raises(RateLimited):
        await provider.text_completion(dep(fake_tgi, knobs="overloaded=1"), {"prompt": "x"},
                                       context(http))
    with pytest.raises(BadRequest) as caught:
        await provider.text_completion(dep(fake_tgi), {"prompt": "x", "logit_bias": {}},
                                       context(http))
    assert caught.value.param == "logit_bias"
