"""The Bedrock adapter against a fake Bedrock runtime that verifies SigV4 with botocore."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from router.errors import (
    BadRequest,
    ContextWindowExceeded,
    PermissionDenied,
    RateLimited,
)
from router.providers.catalog import get_provider
from tests.providers.conftest import BEDROCK_API_KEY, BEDROCK_SECRET
from tests.providers.helpers import collect, context, deployment
from tests.support.fake_openai import DEFAULT_REPLY

CLAUDE = "anthropic.claude-3-sonnet-20240229-v1:0"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]


def dep(fake, model=CLAUDE, secret=BEDROCK_SECRET, **params):
    base = {"aws_access_key_id": "AKIDFAKEEXAMPLE0001", "aws_secret_access_key": secret,
            "aws_region_name": "eu-west-1", "aws_bedrock_runtime_endpoint": fake.base}
    return deployment("bedrock", model, params={**base, **params})


def bedrock():
    return get_provider("bedrock")


async def test_converse_chat_is_signed_and_translated(fake_bedrock, http):
    fake_bedrock.clear()
    body = {"model": CLAUDE, "messages": MESSAGES, "max_tokens": 64, "temperature": 0.5,
            "top_p": 0.9, "stop": ["END"]}
    result = await bedrock().chat(dep(fake_bedrock), body, context(http))
    assert result["choices"][0]["message"]["content"] == DEFAULT_REPLY
    assert result["choices"][0]["finish_reason"] == "stop"
    assert result["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    [seen] = fake_bedrock.requests()
    assert seen["sigv4"] == {"auth": "sigv4", "region": "eu-west-1", "service": "bedrock",
                             "key_id": "AKIDFAKEEXAMPLE0001"}
    assert seen["path"] == "/model/anthropic.claude-3-sonnet-20240229-v1:0/converse"
    assert seen["body"]["system"] == [{"text": "Be brief."}]
    assert seen["body"]["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.5, "topP": 0.9,
                                               "stopSequences": ["END"]}


async def test_a_wrong_secret_fails_the_signature_check(fake_bedrock, http):
    with pytest.raises(PermissionDenied) as caught:
        await bedrock().chat(dep(fake_bedrock, secret="not-the-secret"), {"messages": MESSAGES},
                             context(http))
    assert "signature" in caught.value.message
    assert "not-the-secret" not in caught.value.message


async def test_converse_stream_decodes_event_stream_frames(fake_bedrock, http):
    chunks = await collect(bedrock().chat_stream(dep(fake_bedrock), {"messages": MESSAGES},
                                                 context(http)))
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == DEFAULT_REPLY
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["total_tokens"] == 9


async def test_stream_exception_frame_is_raised(fake_bedrock, http):
    with pytest.raises(RateLimited):
        await collect(bedrock().chat_stream(dep(fake_bedrock, CLAUDE + "+stream_error=throttling"),
                                            {"messages": MESSAGES}, context(http)))


async def test_tool_calls_in_both_directions(fake_bedrock, http):
    fake_bedrock.clear()
    first = await bedrock().chat(dep(fake_bedrock), {"messages": MESSAGES, "tools": TOOLS,
                                                     "tool_choice": "required"}, context(http))
    choice = first["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    follow = [*MESSAGES, choice["message"],
              {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    second = await bedrock().chat(dep(fake_bedrock), {"messages": follow, "tools": TOOLS},
                                  context(http))
    assert second["choices"][0]["message"]["content"] == DEFAULT_REPLY
    sent = fake_bedrock.requests()
    assert sent[0]["body"]["toolConfig"]["toolChoice"] == {"any": {}}
    assert sent[1]["body"]["messages"][1]["content"][0]["toolUse"]["input"] == {"city": "Paris"}
    assert sent[1]["body"]["messages"][2]["content"][0]["toolResult"]["toolUseId"] == call["id"]
    chunks = await collect(bedrock().chat_stream(dep(fake_bedrock), {"messages": MESSAGES,
                                                                     "tools": TOOLS},
                                                 context(http)))
    deltas = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
              if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert deltas[0]["function"]["name"] == "get_weather"
    assert orjson.loads("".join(d["function"]["arguments"] for d in deltas)) == {"city": "Paris"}


@pytest.mark.parametrize("fmt", ["float", "base64"])
async def test_titan_embeddings_one_call_per_input(fake_bedrock, http, fmt):
    fake_bedrock.clear()
    result = await bedrock().embed(dep(fake_bedrock, "amazon.titan-embed-text-v2:0"),
                                   {"input": ["ab", "abcd efg"], "dimensions": 3,
                                    "encoding_format": fmt}, context(http))
    vectors = [d["embedding"] for d in result["data"]]
    if fmt == "base64":
        vectors = [list(struct.unpack("<3f", base64.b64decode(v))) for v in vectors]
    assert vectors[0] == pytest.approx([0.02, 0.03, 0.04])
    assert vectors[1] == pytest.approx([0.08, 0.09, 0.10])
    assert result["usage"]["prompt_tokens"] == 3
    assert sorted(r["body"]["inputText"] for r in fake_bedrock.requests()) == ["ab", "abcd efg"]


async def test_cohere_embeddings(fake_bedrock, http):
    fake_bedrock.clear()
    result = await bedrock().embed(dep(fake_bedrock, "cohere.embed-english-v3"),
                                   {"input": ["a", "bb"], "input_type": "search_query"},
                                   context(http))
    assert [d["embedding"][0] for d in result["data"]] == [0.1, 0.2]
    [seen] = fake_bedrock.requests()
    assert seen["body"] == {"texts": ["a", "bb"], "input_type": "search_query"}
    with pytest.raises(BadRequest):
        await bedrock().embed(dep(fake_bedrock, CLAUDE), {"input": "x"}, context(http))


async def test_custom_template_invokes_a_text_model_with_the_exact_prompt(fake_bedrock, http):
    fake_bedrock.clear()
    template = {"roles": {"system": {"pre_message": "<<SYS>>", "post_message": "<</SYS>>"},
                          "user": {"pre_message": "[INST]", "post_message": "[/INST]"}},
                "bos_token": "<s>", "final_prompt_value": "\n"}
    d = dep(fake_bedrock, "meta.llama3-8b-instruct-v1:0+echo=1", **template)
    result = await bedrock().chat(d, {"messages": MESSAGES, "max_tokens": 30}, context(http))
    expected = "<s><<SYS>>Be brief.<</SYS>>[INST]Hi there[/INST]\n"
    [seen] = fake_bedrock.requests()
    assert seen["action"] == "invoke"
    assert seen["body"] == {"prompt": expected, "max_gen_len": 30}
    assert result["choices"][0]["message"]["content"] == expected
    chunks = await collect(bedrock().chat_stream(d, {"messages": MESSAGES}, context(http)))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c["choices"]) == expected


async def test_text_completion_routes(fake_bedrock, http):
    fake_bedrock.clear()
    mistral = await bedrock().text_completion(
        dep(fake_bedrock, "mistral.mistral-7b-instruct-v0:2+echo=1"),
        {"prompt": "<s>[INST] hi [/INST]", "stop": "</s>"}, context(http))
    assert mistral["choices"][0]["text"] == "<s>[INST] hi [/INST]"
    claude = await bedrock().text_completion(dep(fake_bedrock), {"prompt": "Say hi"},
                                             context(http))
    assert claude["object"] == "text_completion"
    assert claude["choices"][0]["text"] == DEFAULT_REPLY
    assert [r["action"] for r in fake_bedrock.requests()] == ["invoke", "converse"]


async def test_throttling_and_context_errors(fake_bedrock, http):
    with pytest.raises(RateLimited):
        await bedrock().chat(dep(fake_bedrock, CLAUDE + "+throttle=1"), {"messages": MESSAGES},
                             context(http))
    with pytest.raises(ContextWindowExceeded):
        await bedrock().chat(dep(fake_bedrock, CLAUDE + "+error=context_length"),
                             {"messages": MESSAGES}, context(http))
    with pytest.raises(BadRequest) as caught:
        await bedrock().chat(dep(fake_bedrock), {"messages": MESSAGES, "seed": 1}, context(http))
    assert caught.value.param == "seed"


async def test_credentials_and_endpoint_from_the_environment(fake_bedrock, http, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", fake_bedrock.base)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", BEDROCK_SECRET)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    fake_bedrock.clear()
    await bedrock().chat(deployment("bedrock", "converse/" + CLAUDE), {"messages": MESSAGES},
                         context(http))
    [seen] = fake_bedrock.requests()
    assert seen["sigv4"]["key_id"] == "AKIDFROMENVIRONMENT"
    assert seen["sigv4"]["region"] == "ap-south-1"
    assert seen["model_id"] == CLAUDE


async def test_bedrock_api_key_is_a_bearer_token(fake_bedrock, http):
    fake_bedrock.clear()
    d = deployment("bedrock", CLAUDE, api_key=BEDROCK_API_KEY,
                   params={"aws_bedrock_runtime_endpoint": fake_bedrock.base})
    await bedrock().chat(d, {"messages": MESSAGES}, context(http))
    assert fake_bedrock.requests()[0]["sigv4"] == {"auth": "bearer"}
