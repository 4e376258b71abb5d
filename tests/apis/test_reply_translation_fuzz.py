"""Upstream replies fuzzed with hypothesis: whatever a chat upstream answers, its translation
to a Responses or Messages reply (or stream events) is JSON the gateway can send, or fails
with one of the errors that the routes turn into a 502 naming the upstream — never anything
that would be a 500.

Replies are drawn the way orjson parses them (integers within 64 bits, finite floats), in
the shape of a chat completion and its chunks, with any JSON in any field."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.providers._wire import SHAPE_ERRORS
from router.translate import messages, responses

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
leaves = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
any_json = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's plausible value, or any JSON at all."""
    return st.one_of(value, any_json)


counts = maybe(st.integers(0, 10**6) | st.sampled_from([1e300, 2**64 - 1, -1, 0.5, "12", "x"]))
usages = maybe(st.fixed_dictionaries({}, optional={
    "prompt_tokens": counts, "completion_tokens": counts, "total_tokens": counts,
    "prompt_tokens_details": maybe(st.fixed_dictionaries({"cached_tokens": counts})),
    "completion_tokens_details": maybe(st.fixed_dictionaries({"reasoning_tokens": counts}))}))
calls = maybe(st.lists(maybe(st.fixed_dictionaries({}, optional={
    "index": maybe(st.integers(0, 2)), "id": maybe(st.text(max_size=5)),
    "type": st.just("function"), "function": maybe(st.fixed_dictionaries({}, optional={
        "name": maybe(st.text(max_size=5)), "arguments": maybe(st.just('{"a": 1}'))}))})),
    max_size=3))
finishes = maybe(st.sampled_from(["stop", "length", "tool_calls", "content_filter"]))
messages_ = maybe(st.fixed_dictionaries({}, optional={
    "role": st.just("assistant"), "content": maybe(st.text(max_size=8)),
    "refusal": maybe(st.text(max_size=8)), "tool_calls": calls}))
completions = st.fixed_dictionaries({}, optional={
    "id": maybe(st.text(max_size=5)), "created": counts, "model": maybe(st.text(max_size=5)),
    "choices": maybe(st.lists(maybe(st.fixed_dictionaries({}, optional={
        "index": maybe(st.integers(0, 1)), "message": messages_,
        "finish_reason": finishes})), max_size=2)),
    "usage": usages})
chunks = st.lists(st.fixed_dictionaries({}, optional={
    "id": maybe(st.text(max_size=5)), "model": maybe(st.text(max_size=5)),
    "choices": maybe(st.lists(maybe(st.fixed_dictionaries({}, optional={
        "index": maybe(st.integers(0, 1)), "finish_reason": finishes,
        "delta": maybe(st.fixed_dictionaries({}, optional={
            "role": st.just("assistant"), "content": maybe(st.text(max_size=8)),
            "tool_calls": calls}))})), max_size=2)),
    "usage": usages}), max_size=6)
REQUEST = {"model": "m", "input": "hi"}


def sendable(value: Any) -> None:
    orjson.dumps(value)  # raises if the gateway could not send it


@FUZZ
@given(completions)
def test_any_chat_reply_becomes_a_response_or_an_upstream_error(reply: dict[str, Any]) -> None:
    try:
        response = responses.from_chat(reply, REQUEST, "resp_1")
    except SHAPE_ERRORS:
        return
    sendable(response)
    assert response["status"] in ("completed", "incomplete")
    sendable(responses.assistant_message(response))


@FUZZ
@given(completions)
def test_any_chat_reply_becomes_a_message_or_an_upstream_error(reply: dict[str, Any]) -> None:
    try:
        message = messages.from_chat(reply, "m")
    except SHAPE_ERRORS:
        return
    sendable(message)
    assert message["type"] == "message"


@FUZZ
@given(chunks)
def test_any_chat_stream_becomes_events_or_an_upstream_error(stream: list[dict[str, Any]]
                                                              ) -> None:
    for translation in (responses.ResponsesStream(REQUEST, "resp_1"),
                        messages.MessagesStream("m")):
        events = translation.start()
        try:
            for chunk in stream:
                events += translation.feed(chunk)
            events += translation.end()
        except SHAPE_ERRORS:
            continue
        sendable(events)
        assert all(isinstance(event.get("type"), str) for event in events)
