"""Vertex AI through a real gateway process, the openai SDK as client, against a loopback fake
of Vertex, Google's token endpoint and the GCE metadata server (tests/support/fake_vertex.py),
which verifies each JWT grant's RS256 signature and refuses tokens it did not issue."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.fake_openai import DEFAULT_REPLY, FakeUpstream, start_server
from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.procs import PYTHON, REPO

PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "additionalProperties": False,
                   "properties": {"city": {"type": ["string", "null"]}}, "required": ["city"]}}}


def _account(email: str) -> tuple[dict[str, Any], str]:
    """A throwaway service account: (its key file's content, its public key PEM)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    info = {"type": "service_account", "project_id": "sa-project",
            "private_key_id": f"kid-{email[:5]}", "private_key": private,
            "client_email": email, "client_id": "1234567890"}
    return info, public.decode()


class Vertex:
    def __init__(self, fake: FakeUpstream, gateway: Gateway, keys: list[str]) -> None:
        self.fake, self.gateway, self.keys = fake, gateway, keys

    def tokens(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.fake.base}/_tokens", timeout=5).json())

    def calls_of(self, who: str) -> list[dict[str, Any]]:
        return [c for c in self.tokens()["calls"] if c.get("iss") == who]

    def last(self) -> dict[str, Any]:
        return self.fake.requests()[-1]


@pytest.fixture(scope="module")
def vertex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vertex]:
    names = ["main", "burst", "short", "claude"]
    accounts = {n: _account(f"{n}@sa-project.iam.gserviceaccount.com") for n in names}
    rogue, _ = _account("rogue@sa-project.iam.gserviceaccount.com")  # unknown to the fake
    registered = {info["client_email"]: {"public_key": public,
                                         "lifetime": 1 if name == "short" else 3600}
                  for name, (info, public) in accounts.items()}
    fake = start_server("tests.support.fake_vertex",
                        env={"FAKE_VERTEX_ACCOUNTS": json.dumps(registered)})
    token_uri = f"{fake.base}/token"
    for info, _ in accounts.values():
        info["token_uri"] = token_uri
    rogue["token_uri"] = token_uri
    burst_file = tmp_path_factory.mktemp("sa") / "burst.json"
    burst_file.write_text(json.dumps(accounts["burst"][0]))

    def entry(name: str, model: str, **params: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {"model": f"vertex_ai/{model}",
                                                       "api_base": fake.base, **params}}

    main = {"vertex_credentials": "os.environ/GW_VERTEX_SA", "vertex_project": "proj-1"}
    config = {"model_list": [
        entry("gemini", "gemini-2.0-flash", vertex_location="us-east5", **main),
        entry("vx/*", "*", **main),
        # Their own deployments: these statuses start a cooldown of the deployment they hit.
        entry("gemini-429", "gemini+status=429+retry_after=7", **main),
        entry("gemini-401", "gemini+status=401", **main),
        entry("gemini-403", "gemini+status=403", **main),
        entry("claude", "claude-3-5-sonnet@20240620", vertex_project="proj-1",
              vertex_credentials=accounts["claude"][0]),
        entry("burst", "gemini-burst", vertex_project="proj-1",
              vertex_credentials=str(burst_file)),
        entry("short", "gemini-short", vertex_project="proj-1",
              vertex_credentials=json.dumps(accounts["short"][0])),
        entry("on-gce", "gemini-meta"),  # neither credentials nor project: the metadata server
        entry("rogue", "gemini-rogue", vertex_project="proj-1",
              vertex_credentials=json.dumps(rogue)),
    ], "router_settings": {"num_retries": 0, "allowed_fails": 1000}}
    env = {**clean_env(), "GW_VERTEX_SA": json.dumps(accounts["main"][0]),
           "VERTEXAI_LOCATION": "europe-west4",
           "GCE_METADATA_HOST": fake.base.removeprefix("http://")}
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    gateway = start_gateway(config, env)
    keys = [info["private_key"] for info, _ in [*accounts.values(), (rogue, "")]]
    try:
        yield Vertex(fake, gateway, keys)
    finally:
        issued = httpx.get(f"{fake.base}/_tokens", timeout=5).json()["issued"]
        # Neither a private key (a line of its base64 body) nor a token may reach the output.
        key_lines = [k.splitlines()[3] for k in keys]
        gateway.secrets = (*gateway.secrets, *issued, *key_lines)
        gateway.stop()
        fake.stop()


# ---------------------------------------------------------------- Gemini


def test_chat_with_system_instruction_and_images(vertex: Vertex) -> None:
    reply = vertex.gateway.openai().chat.completions.create(
        model="gemini", max_tokens=50, temperature=0.2, stop="END",
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": [
                      {"type": "text", "text": "What is in these?"},
                      {"type": "image_url", "image_url": {"url": PNG}},
                      {"type": "image_url", "image_url": {"url": "https://img.test/cat.jpg"}}]}])
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (6, 5)
    seen = vertex.last()
    assert seen["path"] == ("/v1/projects/proj-1/locations/us-east5/publishers/google/models/"
                            "gemini-2.0-flash:generateContent")
    body = seen["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"][0]["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://img.test/cat.jpg"}}]
    assert body["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2,
                                        "stopSequences": ["END"]}


def test_stream_with_usage_and_the_location_from_the_environment(vertex: Vertex) -> None:
    stream = vertex.gateway.openai().chat.completions.create(
        model="vx/gemini-1.5-pro", messages=[{"role": "user", "content": "Hi there"}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.prompt_tokens == 2 and chunks[-1].usage.completion_tokens == 5
    seen = vertex.last()
    assert seen["path"].endswith("/locations/europe-west4/publishers/google/models/"
                                 "gemini-1.5-pro:streamGenerateContent")
    assert seen["query"] == "alt=sse"


def test_tools_both_ways(vertex: Vertex) -> None:
    client = vertex.gateway.openai()
    question = {"role": "user", "content": "Weather in Paris?"}
    reply = client.chat.completions.create(
        model="gemini", messages=[question], tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather",
                                                                         {"city": "Paris"})
    sent = vertex.last()["body"]
    assert sent["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert sent["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "object", "properties": {"city": {"type": "string", "nullable": True}},
        "required": ["city"]}
    final = client.chat.completions.create(model="gemini", tools=[WEATHER], messages=[
        question, reply.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}])
    assert final.choices[0].message.content == DEFAULT_REPLY
    contents = vertex.last()["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    # The thought signature the model attached comes back with its call.
    assert contents[1]["parts"] == [{"functionCall": {"name": "get_weather",
                                                      "args": {"city": "Paris"}},
                                     "thoughtSignature": "c2lnbmVk"}]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather",
                                                          "response": {"temp_c": 21}}}]
    stream = client.chat.completions.create(model="gemini", messages=[question],
                                            tools=[WEATHER], tool_choice="required", stream=True)
    deltas = [c.choices[0] for c in stream if c.choices]
    calls = [d.delta.tool_calls[0] for d in deltas if d.delta.tool_calls]
    assert [(c.index, c.function.name) for c in calls] == [(0, "get_weather")]
    assert deltas[-1].finish_reason == "tool_calls"


def test_json_schema_output(vertex: Vertex) -> None:
    vertex.gateway.openai().chat.completions.create(
        model="gemini", messages=[{"role": "user", "content": "A city, as JSON"}],
        response_format={"type": "json_schema", "json_schema": {
            "name": "city", "strict": True, "schema": {
                "type": "object", "additionalProperties": False,
                "properties": {"name": {"type": "string"}}, "required": ["name"]}}})
    config = vertex.last()["body"]["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseSchema": {
        "type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}


def test_embeddings(vertex: Vertex) -> None:
    result = vertex.gateway.openai().embeddings.create(
        model="vx/text-embedding-005", input=["a b", "a longer text"], dimensions=4)
    assert [len(d.embedding) for d in result.data] == [4, 4]
    assert result.data[0].embedding[0] == pytest.approx(0.03)
    assert result.data[1].embedding[0] == pytest.approx(0.13)
    assert result.usage.prompt_tokens == 5
    seen = vertex.last()
    assert seen["path"].endswith("/models/text-embedding-005:predict")
    assert seen["body"] == {"instances": [{"content": "a b"}, {"content": "a longer text"}],
                            "parameters": {"outputDimensionality": 4}}


def test_a_blocked_prompt_is_a_content_filter_finish(vertex: Vertex) -> None:
    reply = vertex.gateway.openai().chat.completions.create(
        model="vx/gemini+blocked=1", messages=[{"role": "user", "content": "..."}])
    assert reply.choices[0].finish_reason == "content_filter"


# ---------------------------------------------------------------- Claude on Vertex


def test_claude_chat_and_stream(vertex: Vertex) -> None:
    client = vertex.gateway.openai()
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    reply = client.chat.completions.create(model="claude", messages=messages, max_tokens=20)
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert reply.usage.prompt_tokens == 3
    seen = vertex.last()
    assert seen["path"] == ("/v1/projects/proj-1/locations/europe-west4/publishers/anthropic/"
                            "models/claude-3-5-sonnet@20240620:rawPredict")
    assert seen["body"]["anthropic_version"] == "vertex-2023-10-16"
    assert seen["body"]["system"] == "Be brief." and "model" not in seen["body"]
    stream = client.chat.completions.create(model="claude", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == DEFAULT_REPLY
    assert chunks[-1].usage.completion_tokens == 5
    assert vertex.last()["path"].endswith(":streamRawPredict")
    tool = client.chat.completions.create(model="claude", messages=messages, tools=[WEATHER])
    assert tool.choices[0].message.tool_calls[0].function.name == "get_weather"


def test_messages_api_passes_through_to_claude_on_vertex(vertex: Vertex) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=vertex.gateway.url, api_key="unused", max_retries=0)
    message = client.messages.create(model="claude", max_tokens=20, system="Be brief.",
                                     messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].text == DEFAULT_REPLY  # type: ignore[union-attr]
    sent = vertex.last()
    assert sent["path"].endswith("/claude-3-5-sonnet@20240620:rawPredict")
    assert sent["body"] == {"max_tokens": 20, "system": "Be brief.", "anthropic_version":
                            "vertex-2023-10-16", "messages": [{"role": "user", "content": "Hi"}]}
    with client.messages.stream(model="claude", max_tokens=20,
                                messages=[{"role": "user", "content": "Hi"}]) as stream:
        assert "".join(stream.text_stream) == DEFAULT_REPLY
    assert vertex.last()["body"]["stream"] is True


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("knob", "error", "status"), [
    ("vx/gemini+status=400", openai.BadRequestError, 400),
    ("gemini-401", openai.AuthenticationError, 401),
    ("gemini-403", openai.PermissionDeniedError, 403),
    ("vx/gemini+status=500", openai.InternalServerError, 502),
    ("vx/gemini+status=503", openai.InternalServerError, 503),
    ("vx/gemini+error=context_length", openai.BadRequestError, 400),
])
def test_google_errors_are_mapped(vertex: Vertex, knob: str, error: type[Exception],
                                  status: int) -> None:
    with pytest.raises(error) as caught:
        vertex.gateway.openai().chat.completions.create(
            model=knob, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    if "error=" in knob:
        assert caught.value.code == "context_length_exceeded"  # type: ignore[attr-defined]
    assert "ya29" not in str(caught.value)


def test_rate_limit_keeps_retry_after(vertex: Vertex) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        vertex.gateway.openai().chat.completions.create(
            model="gemini-429", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_of_the_wrong_shape_is_a_502(vertex: Vertex, stream: bool) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        reply = vertex.gateway.openai().chat.completions.create(
            model="vx/gemini+bad_shape=1", messages=[{"role": "user", "content": "Hi"}],
            stream=stream)
        list(reply) if stream else None  # type: ignore[call-overload]
    assert caught.value.status_code == 502
    assert "not in the expected shape" in str(caught.value)


def test_an_error_event_mid_stream(vertex: Vertex) -> None:
    stream = vertex.gateway.openai().chat.completions.create(
        model="vx/gemini+stream_error=1", messages=[{"role": "user", "content": "Hi"}],
        stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


# ---------------------------------------------------------------- tokens


def test_concurrent_first_requests_make_one_token_call(vertex: Vertex) -> None:
    client = vertex.gateway.async_openai()

    async def burst() -> list[Any]:
        return await asyncio.gather(*(client.chat.completions.create(
            model="burst", messages=[{"role": "user", "content": f"hi {i}"}])
            for i in range(8)))

    replies = asyncio.run(burst())
    assert [r.choices[0].message.content for r in replies] == [DEFAULT_REPLY] * 8
    calls = vertex.calls_of("burst@sa-project.iam.gserviceaccount.com")
    assert len(calls) == 1
    used = {r["headers"]["authorization"] for r in vertex.fake.requests()
            if "gemini-burst" in r["path"]}
    assert used == {f"Bearer {calls[0]['token']}"}


def test_an_expiring_token_is_replaced(vertex: Vertex) -> None:
    client = vertex.gateway.openai()
    who = "short@sa-project.iam.gserviceaccount.com"
    client.chat.completions.create(model="short", messages=[{"role": "user", "content": "1"}])
    first = vertex.last()["headers"]["authorization"]
    time.sleep(1.1)  # the fake issues this account's tokens for one second
    stale = httpx.post(f"{vertex.fake.base}{vertex.last()['path']}", timeout=5,
                       headers={"authorization": first}, json={"contents": []})
    assert stale.status_code == 401 and stale.json()["error"]["status"] == "UNAUTHENTICATED"
    reply = client.chat.completions.create(model="short",
                                           messages=[{"role": "user", "content": "2"}])
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert vertex.last()["headers"]["authorization"] != first
    assert len(vertex.calls_of(who)) == 2


def test_the_metadata_server_gives_token_and_project(vertex: Vertex) -> None:
    reply = vertex.gateway.openai().chat.completions.create(
        model="on-gce", messages=[{"role": "user", "content": "Hi"}])
    assert reply.choices[0].message.content == DEFAULT_REPLY
    assert vertex.last()["path"].startswith("/v1/projects/fake-metadata-project/")
    assert len(vertex.calls_of("metadata")) == 1


def test_a_refused_grant_is_a_503_naming_no_secret(vertex: Vertex) -> None:
    for _ in range(2):  # nothing bad is cached: the second request asks again
        with pytest.raises(openai.InternalServerError) as caught:
            vertex.gateway.openai().chat.completions.create(
                model="rogue", messages=[{"role": "user", "content": "Hi"}])
        assert caught.value.status_code == 503
        message = str(caught.value)
        assert "token endpoint" in message and "invalid_grant" in message
        assert "PRIVATE KEY" not in message and "eyJ" not in message
    assert [c["iss"] for c in vertex.tokens()["calls"]].count(None) == 2


def test_cold_start_imports_no_vertex_code_nor_cryptography(tmp_path: Path) -> None:
    probe = ("import sys, json, handler.aws_lambda as h; h.app.state.router; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith("
             "('router.providers.vertex', 'router.providers.gcp_auth', "
             "'router.providers.cohere', 'cryptography')))))")
    config = tmp_path / "config.yaml"
    config.write_text("model_list:\n  - model_name: g\n    litellm_params:\n"
                      "      model: vertex_ai/gemini-2.0-flash\n      vertex_project: p\n")
    out = subprocess.run([PYTHON, "-c", probe], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "LANEWAY_LOG_LEVEL": "WARNING",
                                          "CONFIG_FILE_PATH": str(config)})
    assert out.returncode == 0, out.stderr
    # Even a Vertex deployment loads its adapter, and cryptography, only at its first call.
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
