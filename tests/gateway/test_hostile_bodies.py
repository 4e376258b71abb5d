"""Property-based: hostile request bodies through a real gateway process, on the in-process
state backend and on a real Redis.

Hypothesis writes the bodies: a normal request with any of the fields laneway reads replaced
by a wrong type, an absurd size, unicode or deep nesting — or JSON that is no request at all.
Whatever arrives, the client gets a 200 or a 4xx with an OpenAI body (a 5xx only as the
502/503/504 of an upstream that was told to fail), and afterwards nothing waits in line and a
normal request is served at once.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, clean_env, start_gateway

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VALIDATED = importlib.util.find_spec("handler.validation") is not None
"""Whether the handler checks `n` and a body's depth (handler/validation.py, coming from the
lead branch). Until it does, those are known gaps: pinned below as strict xfails and left out
of the generated bodies; once it does, both are generated and must be 400s."""

GOOD_MODELS = ["mock-chat", "mock-tpm", "fake", "fake-tpm"]
FAILING_MODEL = "fake-fail"
"""Its upstream answers 503 to everything: the one model a 5xx may come from."""


@pytest.fixture(scope="module", params=["memory", "redis"])
def gateway(request: pytest.FixtureRequest, fake_openai: FakeUpstream) -> Iterator[Gateway]:
    def openai(name: str, model: str, **extra: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": f"openai/{model}", "api_base": fake_openai.url,
            "api_key": "sk-hostile-bodies-0123456789", "max_parallel_requests": 1, **extra}}

    def mock(name: str, **extra: Any) -> dict[str, Any]:
        return {"model_name": name, "litellm_params": {
            "model": "gpt-4o-mini", "mock_response": "a mocked answer",
            "max_parallel_requests": 1, **extra}}

    # The failing model must not cool down: the requests after it would wait out their timeout.
    router: dict[str, Any] = {"num_retries": 1, "timeout": 3, "allowed_fails": 1_000_000}
    if request.param == "redis":
        router["redis_url"] = request.getfixturevalue("redis_server").url
    config = {
        "model_list": [mock("mock-chat"), mock("mock-tpm", tpm=200_000),
                       openai("fake", "hostile-bodies"),
                       openai("fake-tpm", "hostile-bodies-tpm", tpm=200_000),
                       openai(FAILING_MODEL, "hostile-bodies+status=503")],
        "router_settings": router,
        "general_settings": {"allow_client_side_mock_response": True},
    }
    gw = start_gateway(config, clean_env())
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=20) as c:
        yield c


# -- what a client may send ------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
    | st.text(max_size=16),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12,
)


def _deep(depth: int) -> bytes:
    """JSON nested `depth` levels deep (objects and arrays in turn), built without recursion."""
    opens = [b"[" if i % 2 else b'{"k":' for i in range(depth)]
    closes = [b"]" if i % 2 else b"}" for i in reversed(range(depth))]
    return b"".join(opens) + b'"x"' + b"".join(closes)


DEPTHS = (100, 2_000, 20_000, *((300, 600) if VALIDATED else ()))
DEEP = {f"@@deep-{n}@@": _deep(n) for n in DEPTHS}
"""Placeholders drawn as strings, swapped for deep JSON once the body is encoded (Python's
own encoder would recurse). Depths 255-1024 (read, but not written again, by orjson) only
once the handler refuses them, see test_a_body_too_deep_to_forward_is_a_400."""


def _encode(body: Any) -> bytes:
    """stdlib json: integers of any size, NaN and Infinity, as a careless client writes them."""
    raw = json.dumps(body).encode()
    for marker, deep in DEEP.items():
        raw = raw.replace(f'"{marker}"'.encode(), deep)
    return raw


HUGE = st.sampled_from([
    "x" * 200_000, "🙂" * 50_000, " " * 100_000, "word " * 40_000,
    ["hi"] * 20_000, list(range(30_000)), {f"k{i}": i for i in range(5_000)},
    *DEEP,
])
NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.sampled_from(
    [0, -1, 1, 2**31, 2**53 + 1, 1e308, -0.0, True, False, "1", "10", " 5", "1e3", "", None]))
HOSTILE = st.one_of(JSON_VALUES, NUMBERS, HUGE, st.text(max_size=40))
MODELS = st.one_of(
    st.sampled_from([*GOOD_MODELS, FAILING_MODEL]),
    st.sampled_from(["", " ", "mock-chat ", "MOCK-CHAT", "mock-chat\x00", "../mock-chat",
                     "mock-chat/../fake", "modèle-ünïcode", "模型", "🙂", "\u202emock-chat",
                     "a" * 10_000, "openai/gpt-4o", "*", "mock-*"]),
    st.text(max_size=20),
    HOSTILE,
)
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": HOSTILE}),
    st.fixed_dictionaries({"type": st.just("image_url"), "image_url": HOSTILE}),
    st.fixed_dictionaries({"type": HOSTILE}, optional={"text": HOSTILE}),
    HOSTILE,
)
TOOL_CALL = st.one_of(
    st.fixed_dictionaries({"id": HOSTILE, "type": st.just("function"), "function":
                           st.fixed_dictionaries({"name": HOSTILE, "arguments": HOSTILE})}),
    HOSTILE,
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "system", "assistant", "tool", "developer",
                                        "function", ""]), HOSTILE),
     "content": st.one_of(st.text(max_size=30), st.lists(PART, max_size=3), HOSTILE)},
    optional={"tool_calls": st.one_of(st.lists(TOOL_CALL, max_size=3), HOSTILE),
              "name": HOSTILE, "tool_call_id": HOSTILE},
)
TOOL = st.one_of(
    st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
        {"name": HOSTILE}, optional={"description": HOSTILE, "parameters": HOSTILE})}),
    HOSTILE,
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": MODELS,
    "messages": st.one_of(st.lists(MESSAGE, max_size=4), HOSTILE),
    "prompt": st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3),
                        st.lists(st.integers(-5, 100_000), max_size=5), HOSTILE),
    "input": st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3),
                       HOSTILE),
    "priority": st.one_of(NUMBERS, st.integers(-(2**21), 2**21), st.text(max_size=8)),
    "max_tokens": NUMBERS,
    "max_completion_tokens": NUMBERS,
    "stream": st.one_of(st.booleans(), HOSTILE),
    "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": HOSTILE}), HOSTILE),
    "timeout": st.one_of(NUMBERS, st.sampled_from([1e-300, 0.001, 1e300])),
    "num_retries": NUMBERS,
    "mock_response": st.one_of(
        st.text(max_size=20),
        st.sampled_from(["litellm.RateLimitError", "litellm.Timeout", "Exception: boom",
                         "litellm.ServiceUnavailableError: down", "APIConnectionError",
                         "litellm.AuthenticationError"]),
        st.fixed_dictionaries({"error": st.one_of(HOSTILE, st.fixed_dictionaries(
            {}, optional={"status": NUMBERS, "message": HOSTILE, "retry_after": NUMBERS}))}),
        st.fixed_dictionaries({"choices": HOSTILE}),
        HOSTILE),
    "metadata": st.one_of(st.dictionaries(st.text(max_size=70), st.text(max_size=600),
                                          max_size=20), HOSTILE),
    "tools": st.one_of(st.lists(TOOL, max_size=3), HOSTILE),
    "tool_choice": HOSTILE,
    "user": HOSTILE,
    "dimensions": st.one_of(st.integers(-3, 16), st.text(max_size=4), JSON_VALUES),
    "encoding_format": HOSTILE,
}
if VALIDATED:
    FIELDS["n"] = st.one_of(NUMBERS, st.sampled_from([0, -1, 0.5, 10**9]), JSON_VALUES)

BASE = {
    "chat": {"model": "mock-chat", "messages": [{"role": "user", "content": "hi"}],
             "max_tokens": 20},
    "completions": {"model": "mock-chat", "prompt": "hi", "max_tokens": 20},
    "embeddings": {"model": "mock-chat", "input": "hi"},
}
PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions",
         "embeddings": "/v1/embeddings"}


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, Any] | None]:
    """(endpoint, raw body, the body as sent when it is a JSON object)."""
    endpoint = draw(st.sampled_from(list(PATHS)))
    if draw(st.integers(0, 9)) == 0:  # no request at all
        raw = draw(st.one_of(JSON_VALUES.map(_encode), HUGE.map(_encode), st.binary(
            max_size=50), st.sampled_from([b"", b"{", b"[]", b"null", b"{}" * 3,
                                           b"[" * 5_000 + b"]" * 5_000])))
        return endpoint, raw, None
    body = dict(BASE[endpoint])
    body["model"] = draw(st.sampled_from([*GOOD_MODELS, FAILING_MODEL]))
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=4,
                          unique=True))
    for name in names:
        if draw(st.integers(0, 7)) == 0:
            body.pop(name, None)
        else:
            body[name] = draw(FIELDS[name])
    return endpoint, _encode(body), body


# -- what the client must see ----------------------------------------------------------------

def assert_error_body(payload: Any) -> None:
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    assert isinstance(error, dict) and set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"] != "internal_error", error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error


def assert_success(payload: Any, endpoint: str) -> None:
    assert isinstance(payload, dict), payload
    if endpoint == "embeddings":
        assert payload.get("object") == "list" and isinstance(payload.get("data"), list)
    else:
        assert isinstance(payload.get("choices"), list) and payload["choices"], payload


def may_fail_upstream(body: dict[str, Any] | None) -> bool:
    """Whether the request asked for an upstream failure: the failing model, or a mock
    error (the mock then plays an upstream that answered with that error)."""
    return body is not None and (body.get("model") == FAILING_MODEL
                                 or body.get("mock_response") is not None)


def check(resp: httpx.Response, endpoint: str, body: dict[str, Any] | None) -> None:
    status = resp.status_code
    event(f"{endpoint} {status}")
    if status >= 500:
        assert may_fail_upstream(body), (status, resp.text[:300])
        assert status in (502, 503, 504), (status, resp.text[:300])
    else:
        assert status == 200 or 400 <= status < 500, (status, resp.text[:300])
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        assert status == 200
        events = [e for e in resp.text.split("\n\n") if e]
        assert all(e.startswith("data: ") for e in events), resp.text[:300]
        *chunks, last = [e[6:] for e in events]
        for data in chunks:
            assert isinstance(orjson.loads(data).get("choices"), list), data
        if last != "[DONE]":  # an error after the first byte ends the stream as an event
            assert_error_body(orjson.loads(last))
        return
    payload = orjson.loads(resp.content)
    if status == 200:
        assert_success(payload, endpoint)
    else:
        assert_error_body(payload)


def assert_nothing_held(client: httpx.Client, body: dict[str, Any] | None) -> None:
    status = client.get("/queue/status")
    assert status.status_code == 200
    assert status.json()["groups"] == []
    models = {"mock-tpm"}
    if body is not None and body.get("model") in GOOD_MODELS:
        models.add(body["model"])
    for model in sorted(models):  # one slot each: a slot left held would block this call
        started = time.monotonic()
        resp = client.post("/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
        assert resp.status_code == 200, resp.text[:300]
        assert time.monotonic() - started < 2


@PROPERTY
@given(request=requests())
def test_any_request_body_gets_an_openai_answer(
        client: httpx.Client, request: tuple[str, bytes, dict[str, Any] | None]) -> None:
    endpoint, raw, body = request
    note(f"POST {PATHS[endpoint]} {raw[:2000]!r}")
    resp = client.post(PATHS[endpoint], content=raw,
                       headers={"content-type": "application/json"})
    check(resp, endpoint, body)
    assert_nothing_held(client, body)


@pytest.mark.xfail(not VALIDATED, strict=True,
                   reason="`n` is not validated: the mock builds `int(n)` choices")
@pytest.mark.parametrize("n", [0, -1, 0.5, ":", [1], *([10**9] if VALIDATED else [])])
def test_an_unusable_n_is_a_400(client: httpx.Client, n: Any) -> None:
    resp = client.post("/v1/chat/completions", json={
        "model": "mock-chat", "messages": [{"role": "user", "content": "hi"}], "n": n})
    assert resp.status_code == 400, resp.text[:300]
    assert_error_body(resp.json())


@pytest.mark.xfail(not VALIDATED, strict=True,
                   reason="a body nested 255-1024 deep is read but cannot be "
                   "forwarded (orjson writes at most 254 levels): a 502 instead of a 400")
def test_a_body_too_deep_to_forward_is_a_400(client: httpx.Client) -> None:
    raw = (b'{"model": "fake", "messages": [{"role": "user", "content": "hi"}], "user": '
           + _deep(300) + b"}")
    resp = client.post("/v1/chat/completions", content=raw,
                       headers={"content-type": "application/json"})
    assert resp.status_code == 400, resp.text[:300]
