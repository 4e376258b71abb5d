"""A virtual key's limits, budget, model access and priority, enforced by the engine on the
in-process backend and on a real Redis (the gateway's auth hands the engine a `Principal`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio

from router import Router
from router.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    RateLimited,
    RequestError,
    TenantLimited,
)
from router.tenants.gate import entities_of
from router.tenants.records import KeyRecord, Limits, Principal, TeamRecord, hash_key, new_key
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="function")

PRICED = {"input_cost_per_token": 0.001, "output_cost_per_token": 0.002}  # USD, for round sums
MODELS = [
    {"model_name": "m", "litellm_params": {"model": "gpt-4o", "mock_response": "one two three",
                                           **PRICED}},
    {"model_name": "slow", "litellm_params": {"model": "gpt-4o", "mock_response": "ok",
                                              "mock_delay": 0.2}},
    {"model_name": "broken", "litellm_params": {"model": "gpt-4o",
                                                "mock_response": "litellm.InternalServerError"}},
    {"model_name": "grouped", "litellm_params": {"model": "gpt-4o", "mock_response": "ok"},
     "model_info": {"access_groups": ["beta"]}},
]


@pytest_asyncio.fixture(params=["memory", "redis"], loop_scope="function")
async def router(request: pytest.FixtureRequest) -> AsyncIterator[Router]:
    settings: dict[str, Any] = {"num_retries": 0, "timeout": 5}
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        settings["redis_url"] = server.url
    r = Router(model_list=MODELS, **settings)
    yield r
    await r.aclose()


def key(team: TeamRecord | None = None, **limits: Any) -> Principal:
    record = KeyRecord(key_hash=hash_key(new_key()), key_last4="abcd", key_alias="app",
                       team_id=team.team_id if team else None, limits=Limits(**limits))
    return Principal("key", key=record, team=team)


def chat(model: str = "m", **kw: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **kw}


async def usage(router: Router, p: Principal) -> Any:
    tag, entities = entities_of(p, "m")
    return await router.state.tenant_usage(tag, entities[0])


async def test_priority_follows_the_key_and_never_beats_its_floor(router: Router) -> None:
    batch = key(default_priority=500, priority_floor=100)
    _, record = await router.serve("chat", chat(), principal=batch)
    assert record.priority == 500  # the key's default
    _, record = await router.serve("chat", chat(priority=0), principal=batch)
    assert record.priority == 100  # asked for 0, clamped to the floor
    _, record = await router.serve("chat", chat(priority=900), principal=batch)
    assert record.priority == 900  # less important than the floor is fine
    team = TeamRecord("t1", limits=Limits(default_priority=7, priority_floor=5))
    _, record = await router.serve("chat", chat(), principal=key(team))
    assert record.priority == 7  # the team's default when the key has none
    _, record = await router.serve("chat", chat(priority=1), principal=key(team))
    assert record.priority == 5
    meta = replace(key(), key=replace(key().key, metadata={"priority": 42}))  # type: ignore[arg-type]
    _, record = await router.serve("chat", chat(), principal=meta)
    assert record.priority == 42


async def test_model_access_by_name_and_access_group(router: Router) -> None:
    p = key(models=("m", "beta"))
    await router.serve("chat", chat("m"), principal=p)
    await router.serve("chat", chat("grouped"), principal=p)  # through its access group
    with pytest.raises(AuthenticationFailed) as info:
        await router.serve("chat", chat("slow"), principal=p)
    assert info.value.status == 401 and "slow" in info.value.message
    team = TeamRecord("t2", limits=Limits(models=("slow",)))
    with pytest.raises(AuthenticationFailed) as info:  # the key allows m, its team does not
        await router.serve("chat", chat("m"), principal=key(team, models=("m",)))
    assert "team" in info.value.message


async def test_rpm_limit_admits_exactly_its_number(router: Router) -> None:
    p = key(rpm_limit=5)
    results = await asyncio.gather(*(router.serve("chat", chat(), principal=p)
                                     for _ in range(20)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, TenantLimited)]
    assert len(refused) == 15 and sum(not isinstance(r, Exception) for r in results) == 5
    error = refused[0]
    assert error.status == 429 and error.retry_after and 59 < error.retry_after <= 60
    assert error.headers["x-ratelimit-limit-requests"] == "5"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"


async def test_parallel_limit_counts_the_whole_request(router: Router) -> None:
    p = key(max_parallel_requests=2)
    first = [asyncio.ensure_future(router.serve("chat", chat("slow"), principal=p))
             for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(TenantLimited) as info:
        await router.serve("chat", chat("slow"), principal=p)
    assert "parallel" in info.value.message
    await asyncio.gather(*first)
    await router.serve("chat", chat("slow"), principal=p)  # the slots came back


async def test_team_limit_is_shared_by_its_keys(router: Router) -> None:
    team = TeamRecord("shared-" + new_key()[-6:], limits=Limits(rpm_limit=3))
    a, b = key(team), key(team)
    await router.serve("chat", chat(), principal=a)
    await router.serve("chat", chat(), principal=b)
    await router.serve("chat", chat(), principal=a)
    with pytest.raises(TenantLimited) as info:
        await router.serve("chat", chat(), principal=b)
    assert "team" in info.value.message


async def test_budget_is_never_exceeded_and_each_call_is_charged(router: Router) -> None:
    # prompt ~8 tokens at $0.001, at most 10 completion tokens at $0.002: ≤ ~$0.03 a call
    p = key(max_budget=0.1)
    spent = []
    with pytest.raises(BudgetExceeded) as info:
        for _ in range(20):
            _, record = await router.serve("chat", chat(max_tokens=10), principal=p)
            assert record.cost > 0
            spent.append(record.cost)
    assert info.value.status == 400 and info.value.type == "budget_exceeded"
    assert 0 < sum(spent) <= 0.1
    assert abs((await usage(router, p)).spent / 1e9 - sum(spent)) < 1e-6


async def test_concurrent_calls_never_overspend(router: Router) -> None:
    p = key(max_budget=0.1)
    results = await asyncio.gather(*(router.serve("chat", chat(max_tokens=10), principal=p)
                                     for _ in range(30)), return_exceptions=True)
    served = [r for r in results if not isinstance(r, Exception)]
    assert served and all(isinstance(r, BudgetExceeded) for r in results
                          if isinstance(r, Exception))
    assert sum(rec.cost for _, rec in served) <= 0.1  # type: ignore[misc]


async def test_failed_and_refused_requests_give_everything_back(router: Router) -> None:
    p = key(max_parallel_requests=1, tpm_limit=10_000, max_budget=5.0)
    for _ in range(3):
        with pytest.raises(RequestError):
            await router.serve("chat", chat("broken"), principal=p)
    u = await usage(router, p)
    assert (u.in_flight, u.tokens, u.spent, u.reserved) == (0, 0, 0, 0)


async def test_queue_rate_limit_is_not_a_tenant_limit(router: Router) -> None:
    # The group's own limits still queue (or 429 as queue_full); only tenant limits refuse.
    p = key()
    served, record = await router.serve("chat", chat(), principal=p)
    assert record.key_alias == "app" and not isinstance(served, RateLimited)
