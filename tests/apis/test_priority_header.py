"""The priority header goes through the same check and clamping as the body field."""

from __future__ import annotations

import pytest

from router.dispatch import CHAT
from router.errors import BadRequest
from router.router import Router
from router.tenants.records import KeyRecord, Limits, Principal

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "mock_response": "ok"}


def _router() -> Router:
    return Router(model_list=[{"model_name": "m", "litellm_params": {
        "model": "gpt-4o-mini", "mock_response": "ok"}}])


def _floored(floor: int) -> Principal:
    return Principal("key", key=KeyRecord(key_hash="f" * 64, key_last4="ffff",
                                          limits=Limits(priority_floor=floor)))


async def test_a_header_value_is_clamped_to_the_keys_floor() -> None:
    router = _router()
    _, record = await router.serve(CHAT, dict(BODY), priority="-3", principal=_floored(2))
    assert record.priority == 2
    _, record = await router.serve(CHAT, {**BODY, "priority": 0}, priority=" 7 ",
                                   principal=_floored(2))
    assert record.priority == 7  # the header overrides the body's field
    await router.aclose()


@pytest.mark.parametrize("value", ["high", "1.5", "", str(2**21)])
async def test_a_bad_header_value_is_a_400(value: str) -> None:
    router = _router()
    with pytest.raises(BadRequest) as info:
        await router.serve(CHAT, dict(BODY), priority=value)
    assert info.value.param == "priority"
    await router.aclose()
