"""Translation fuzzed with hypothesis: any request maps to a valid upstream body or a 400.

Two kinds of input. Well-formed Responses and Messages requests (a user turn first, roles
alternating, tool calls answered) must translate, pass the gateway's chat checks, and become
bodies that the fake Anthropic API and the fake Bedrock Converse API accept, checked the way
the real services check them. Arbitrary values in every field must end in a translation or a
`BadRequest`, never another exception."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handler.validation import validate
from router.dispatch import CHAT
from router.errors import BadRequest
from router.providers.anthropic import AnthropicProvider
from router.providers.base import CallContext
from router.providers.bedrock_converse import to_converse
from router.router import Router
from router.translate import messages, responses
from tests.support.fake_anthropic import invalid as anthropic_invalid
from tests.support.fake_bedrock import invalid_converse

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=20)
names = st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True)
schema = st.just({"type": "object", "properties": {"city": {"type": "string"}}})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8)

_DEPLOYMENT = Router(model_list=[{"model_name": "c", "litellm_params": {
    "model": "anthropic/claude-fake", "api_key": "k"}}]).deployments()[0]
_CTX = CallContext(http=None, timeout=1.0)  # type: ignore[arg-type]  # no call is made


def _upstreams_accept(chat: dict[str, Any]) -> None:
    """The chat body passes the gateway's own checks and becomes valid provider bodies."""
    validate(CHAT, chat, 128)
    orjson.dumps(chat)
    request = AnthropicProvider()._request(_DEPLOYMENT, dict(chat), _CTX, stream=False)
    assert anthropic_invalid(request, {"x-api-key": "k", "anthropic-version": "v"}) is None
    problem = invalid_converse(to_converse(dict(chat), drop_params=False))
    assert problem is None, problem


# ------------------------------------------------------------------ Responses


@st.composite
def responses_turns(draw: st.DrawFn) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(1, 4))):
        part = st.fixed_dictionaries({"type": st.just("input_text"), "text": text})
        content = draw(text | st.lists(part, min_size=1, max_size=3))
        items.append({"role": "user", "content": content} if draw(st.booleans())
                     else {"type": "message", "role": "user", "content": content})
        if draw(st.booleans()):
            call_id = f"call_{turn}"
            items.append({"type": "function_call", "call_id": call_id, "name": draw(names),
                          "arguments": orjson.dumps(draw(st.dictionaries(
                              names, text, max_size=2))).decode()})
            items.append({"type": "function_call_output", "call_id": call_id,
                          "output": draw(text)})
        items.append({"role": "assistant", "content": [
            {"type": "output_text", "text": draw(text)}]})
    return items[:-1] if draw(st.booleans()) else items


responses_requests = st.fixed_dictionaries(
    {"model": st.just("m"), "input": text | responses_turns()},
    optional={
        "instructions": text, "max_output_tokens": st.integers(1, 4096),
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "stream": st.booleans(),
        "tools": st.lists(st.fixed_dictionaries(
            {"type": st.just("function"), "name": names, "parameters": schema},
            optional={"description": text}), min_size=1, max_size=3),
        "tool_choice": st.sampled_from(["auto", "none", "required"]),
        "parallel_tool_calls": st.booleans(), "store": st.booleans(),
        "metadata": st.dictionaries(names, text, max_size=3),
        "reasoning": st.fixed_dictionaries({"effort": st.sampled_from(["low", "high"])}),
        "text": st.just({"format": {"type": "json_schema", "name": "out",
                                    "schema": {"type": "object"}}}),
    })


@FUZZ
@given(responses_requests)
def test_valid_responses_requests_become_valid_upstream_bodies(body: dict[str, Any]) -> None:
    chat = responses.to_chat(body)
    # Only the laneway-side rules may refuse a chat body that a Responses body produced.
    drop = {k: chat.pop(k) for k in ("response_format", "reasoning_effort", "metadata",
                                     "parallel_tool_calls") if k in chat}
    if chat.get("tool_choice") and not chat.get("tools"):
        drop["tool_choice"] = chat.pop("tool_choice")
    _upstreams_accept(chat)


@FUZZ
@given(st.dictionaries(st.sampled_from([*sorted(responses._ACCEPTED), "junk"]), json_values)
       .map(lambda d: {"model": "m", **d}),
       st.lists(json_values, max_size=3))
def test_any_responses_body_translates_or_is_a_400(body: dict[str, Any], items: list[Any]
                                                   ) -> None:
    for candidate in (body, {**body, "input": items}):
        try:
            chat = responses.to_chat(candidate)
            validate(CHAT, chat, 128)
            orjson.dumps(chat)
        except BadRequest as exc:
            assert exc.status == 400 and exc.message


# ------------------------------------------------------------------ Messages


@st.composite
def messages_turns(draw: st.DrawFn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(1, 4))):
        text_block = st.fixed_dictionaries({"type": st.just("text"), "text": text})
        image = st.just({"type": "image", "source": {"type": "base64",
                                                     "media_type": "image/png",
                                                     "data": "AAAA"}})
        user: Any = draw(text | st.lists(text_block | image, min_size=1, max_size=3))
        if out and out[-1]["role"] == "assistant" and any(
                isinstance(b, dict) and b.get("type") == "tool_use"
                for b in out[-1]["content"]):
            uses = [b for b in out[-1]["content"] if b.get("type") == "tool_use"]
            results = [{"type": "tool_result", "tool_use_id": b["id"],
                        "content": draw(text)} for b in uses]
            user = results + (user if isinstance(user, list) else [])
        out.append({"role": "user", "content": user})
        reply: list[dict[str, Any]] = [{"type": "text", "text": draw(text)}]
        if draw(st.booleans()):
            reply.append({"type": "tool_use", "id": f"toolu_{turn}", "name": draw(names),
                          "input": draw(st.dictionaries(names, text, max_size=2))})
        out.append({"role": "assistant", "content": reply})
    if out[-1]["role"] == "assistant" and any(
            b.get("type") == "tool_use" for b in out[-1]["content"]):
        out.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": b["id"], "content": "ok"}
            for b in out[-1]["content"] if b.get("type") == "tool_use"]})
    return out


messages_requests = st.fixed_dictionaries(
    {"model": st.just("m"), "max_tokens": st.integers(1, 8192), "messages": messages_turns()},
    optional={
        "system": text | st.lists(st.fixed_dictionaries(
            {"type": st.just("text"), "text": text}), min_size=1, max_size=2),
        "temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "top_k": st.integers(1, 50),
        "stop_sequences": st.lists(text, max_size=3), "stream": st.booleans(),
        "tools": st.lists(st.fixed_dictionaries(
            {"name": names, "input_schema": schema}, optional={"description": text}),
            min_size=1, max_size=3),
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}]),
        "metadata": st.fixed_dictionaries({"user_id": text}),
    })


@FUZZ
@given(messages_requests)
def test_valid_messages_requests_become_valid_upstream_bodies(body: dict[str, Any]) -> None:
    assert anthropic_invalid(body, {"x-api-key": "k", "anthropic-version": "v"}) is None
    chat = messages.to_chat(body)
    _upstreams_accept(chat)


@FUZZ
@given(st.dictionaries(st.sampled_from([*sorted(messages._ACCEPTED), "junk"]), json_values)
       .map(lambda d: {"model": "m", "max_tokens": 5, **d}),
       st.lists(json_values, max_size=3))
def test_any_messages_body_translates_or_is_a_400(body: dict[str, Any], turns: list[Any]
                                                  ) -> None:
    for candidate in (body, {**body, "messages": turns}):
        try:
            chat = messages.to_chat(candidate)
            validate(CHAT, chat, 128)
            orjson.dumps(chat)
        except BadRequest as exc:
            assert exc.status == 400 and exc.message
