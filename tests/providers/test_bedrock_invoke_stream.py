"""Raw-prompt Bedrock text models stream with InvokeModelWithResponseStream (the fake Bedrock
sends each family's chunk JSON in event-stream frames and verifies SigV4 with botocore)."""

from __future__ import annotations

import pytest

from router.providers.catalog import get_provider
from tests.providers.conftest import BEDROCK_SECRET, TEMPLATE
from tests.providers.helpers import collect, context, deployment
from tests.support.fake_openai import DEFAULT_REPLY

MESSAGES = [{"role": "user", "content": "Hi there"}]
PROMPT = "<s><<BEGIN>>[USER]Hi there[/USER]\n[BOT]"


def dep(fake, model, **params):
    return deployment("bedrock", model, params={
        "aws_access_key_id": "AKIDSTREAMTEST0001", "aws_secret_access_key": BEDROCK_SECRET,
        "aws_region_name": "eu-west-1", "aws_bedrock_runtime_endpoint": fake.base, **params})


def text(chunks, key="delta"):
    return "".join((c["choices"][0][key].get("content") if key == "delta"
                    else c["choices"][0]["text"]) or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("model", ["meta.llama3-8b-instruct-v1:0", "mistral.mistral-7b-v0:2",
                                   "amazon.titan-text-express-v1"])
async def test_a_templated_chat_streams_each_family(fake_bedrock, http, model):
    fake_bedrock.clear()
    chunks = await collect(get_provider("bedrock").chat_stream(
        dep(fake_bedrock, model, **TEMPLATE), {"messages": MESSAGES, "max_tokens": 40},
        context(http)))
    assert text(chunks) == DEFAULT_REPLY
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    # The fake counts words: those of the prompt, from the last chunk's invocation metrics.
    assert chunks[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5,
                                   "total_tokens": 8}
    [seen] = fake_bedrock.requests()
    assert seen["action"] == "invoke-with-response-stream"
    assert seen["sigv4"]["service"] == "bedrock"
    assert PROMPT in (seen["body"].get("prompt"), seen["body"].get("inputText"))


async def test_a_text_completion_streams_the_raw_prompt(fake_bedrock, http):
    fake_bedrock.clear()
    chunks = await collect(get_provider("bedrock").text_completion_stream(
        dep(fake_bedrock, "meta.llama3-8b-instruct-v1:0+echo=1"),
        {"prompt": "[INST] say it [/INST]"}, context(http)))
    assert all(c["object"] == "text_completion" for c in chunks)
    assert text(chunks, "text") == "[INST] say it [/INST]"
    assert fake_bedrock.requests()[0]["body"] == {"prompt": "[INST] say it [/INST]"}
