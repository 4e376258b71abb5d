"""SageMaker endpoints through a real gateway process (openai SDK as client) against a fake
SageMaker runtime that re-computes every SigV4 signature with botocore."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.providers.conftest import TEMPLATE
from tests.support.fake_openai import DEFAULT_REPLY, FakeUpstream, start_server

SECRET = "sagemaker-secret-0123456789"
ENV_SECRET = "sagemaker-env-secret-0123456789"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
DEFAULT_PROMPT = "### System:\nBe brief.\n\n### User:\nHi\n\n### Assistant:\n"


@pytest.fixture(scope="module")
def fake_sagemaker() -> Iterator[FakeUpstream]:
    server = start_server("tests.support.fake_sagemaker",
                          env={"FAKE_AWS_SECRET_ACCESS_KEY": SECRET})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake_sagemaker_env() -> Iterator[FakeUpstream]:
    """A second runtime that only accepts the environment's credentials."""
    server = start_server("tests.support.fake_sagemaker",
                          env={"FAKE_AWS_SECRET_ACCESS_KEY": ENV_SECRET})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(fake_sagemaker, fake_sagemaker_env):
    from tests.support.gateway import clean_env, start_gateway

    aws = {"aws_access_key_id": "AKIDSAGEMAKERTEST01", "aws_secret_access_key": SECRET,
           "aws_region_name": "eu-west-1", "api_base": fake_sagemaker.base}

    def entry(name: str, model: str, **params) -> dict:
        return {"model_name": name, "litellm_params": {"model": f"sagemaker/{model}", **aws,
                                                       **params}}

    config = {"model_list": [
        entry("sm", "tgi-llama+echo=1"),
        entry("sm-template", "tgi-llama+echo=1", **TEMPLATE),
        entry("sm-words", "tgi-llama"),
        entry("sm-lmi", "lmi-mistral+lmi=1"),
        entry("sm-whole", "tgi-llama+no_stream=1"),
        entry("sm-embed", "bge-embed-endpoint"),
        entry("sm-busy", "tgi+retry_after=7"),
        entry("sm-down", "tgi+status=503"),
        entry("sm-long", "tgi+error=context_length"),
        entry("sm-broken", "tgi+stream_error=1"),
        {"model_name": "sm-env", "litellm_params": {"model": "sagemaker/tgi-from-env"}},
    ], "router_settings": {"num_retries": 0}}
    env = {**clean_env(), "AWS_ACCESS_KEY_ID": "AKIDFROMENVIRONMENT", "AWS_REGION": "ap-south-1",
           "AWS_SECRET_ACCESS_KEY": ENV_SECRET, "AWS_SESSION_TOKEN": "env-session-token-0001",
           "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": fake_sagemaker_env.base}
    gw = start_gateway(config, env)
    yield gw
    gw.stop()


def test_chat_sends_the_default_prompt_signed_for_sagemaker(gateway, fake_sagemaker):
    fake_sagemaker.clear()
    reply = gateway.openai().chat.completions.create(model="sm", messages=MESSAGES,
                                                     max_tokens=50, temperature=0.5)
    assert reply.choices[0].message.content == DEFAULT_PROMPT
    [seen] = fake_sagemaker.requests()
    assert seen["path"] == "/endpoints/tgi-llama+echo=1/invocations"
    assert seen["sigv4"] == {"auth": "sigv4", "region": "eu-west-1", "service": "sagemaker",
                             "key_id": "AKIDSAGEMAKERTEST01"}
    assert seen["body"] == {"inputs": DEFAULT_PROMPT, "parameters": {
        "details": True, "max_new_tokens": 50, "temperature": 0.5, "do_sample": True}}
    assert reply.usage.completion_tokens == len(DEFAULT_PROMPT.split(" "))


def test_a_custom_template_is_applied_as_for_tgi(gateway, fake_sagemaker):
    fake_sagemaker.clear()
    reply = gateway.openai().chat.completions.create(model="sm-template", messages=MESSAGES)
    expected = "<s><<BEGIN>>[SYS]Be brief.[/SYS]\n[USER]Hi[/USER]\n[BOT]"
    assert fake_sagemaker.requests()[0]["body"]["inputs"] == expected
    assert reply.choices[0].message.content == expected


def test_streams_of_tgi_and_lmi_containers(gateway, fake_sagemaker):
    client = gateway.openai()
    fake_sagemaker.clear()
    for model in ("sm-words", "sm-lmi"):
        chunks = list(client.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == DEFAULT_REPLY, model
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage.completion_tokens == 5
    seen = fake_sagemaker.requests()
    assert [r["action"] for r in seen] == ["invocations-response-stream"] * 2
    assert all(r["body"]["stream"] is True for r in seen)


def test_a_container_that_answers_a_stream_whole(gateway):
    chunks = list(gateway.openai().chat.completions.create(model="sm-whole", messages=MESSAGES,
                                                           stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY


def test_text_completion_and_its_stream(gateway):
    client = gateway.openai()
    text = client.completions.create(model="sm-words", prompt="Once upon", max_tokens=2)
    assert text.choices[0].text == "Hello from" and text.choices[0].finish_reason == "length"
    streamed = client.completions.create(model="sm-words", prompt="Once upon", max_tokens=2,
                                         stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "Hello from"


def test_embeddings(gateway, fake_sagemaker):
    fake_sagemaker.clear()
    result = gateway.openai().embeddings.create(model="sm-embed", input=["hello", "hi"])
    assert [d.embedding for d in result.data] == [pytest.approx([0.5, 0.5, 0.25]),
                                                  pytest.approx([0.2, 0.5, 0.25])]
    assert fake_sagemaker.requests()[0]["body"] == {"text_inputs": ["hello", "hi"]}
    with pytest.raises(openai.BadRequestError):
        gateway.openai().embeddings.create(model="sm-embed", input=[[1, 2, 3]])


def test_errors_are_mapped(gateway):
    client = gateway.openai()
    with pytest.raises(openai.RateLimitError) as busy:
        client.chat.completions.create(model="sm-busy", messages=MESSAGES)
    assert busy.value.response.headers["retry-after"] == "7"
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="sm-down", messages=MESSAGES)
    assert down.value.status_code == 503
    # A ModelError (424) wrapping the container's 422 context-length refusal.
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model="sm-long", messages=MESSAGES)
    assert long.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.chat.completions.create(model="sm-words", messages=MESSAGES,
                                       tools=[{"type": "function", "function": {"name": "f"}}])
    assert "sagemaker does not support the parameter `tools`" in unsupported.value.message
    # An exception frame before any text reached the client: still a status.
    with pytest.raises(openai.APIStatusError) as broken:
        list(client.chat.completions.create(model="sm-broken", messages=MESSAGES, stream=True))
    assert broken.value.status_code == 502
    assert "failed mid-stream" in broken.value.message


def test_credentials_region_and_endpoint_from_the_environment(gateway, fake_sagemaker_env):
    fake_sagemaker_env.clear()
    reply = gateway.openai().chat.completions.create(model="sm-env", messages=MESSAGES)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    [seen] = fake_sagemaker_env.requests()
    assert seen["sigv4"]["region"] == "ap-south-1"
    assert seen["sigv4"]["key_id"] == "AKIDFROMENVIRONMENT"
    assert seen["headers"]["x-amz-security-token"] == "env-session-token-0001"
