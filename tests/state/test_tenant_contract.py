"""One contract for a tenant's (a virtual key's, and its team's) limits and budgets, on the
in-process backend, one Redis and a Redis Cluster (where the tenant's keys and the group's
usually live on different nodes, so the admission runs as two scripts)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from router.state.base import (
    AdmitRequest,
    Admitted,
    Candidate,
    Full,
    Refused,
    Release,
    TenantAsk,
    TenantEnd,
    TenantEntity,
    Waiting,
)

pytestmark = pytest.mark.asyncio(loop_scope="function")

FREE = Candidate("d")  # a deployment without limits: only the tenant decides


def tag() -> str:
    return "key:" + uuid.uuid4().hex


def ask(t: str, *entities: TenantEntity, group: str = "g", cost: int = 0) -> TenantAsk:
    return TenantAsk(tag=t, entities=entities, group=group, cost=cost)


def admit(g: str, rid: str, a: TenantAsk | None, *, cand: Candidate = FREE, tokens: int = 1,
          **kw: object) -> AdmitRequest:
    return AdmitRequest(group=g, request_id=rid, slot_id=rid + ".1", priority=0, tokens=tokens,
                        candidates=[cand], tenant=a, **kw)  # type: ignore[arg-type]


def group() -> str:
    return "g-" + uuid.uuid4().hex[:8]


async def test_key_rpm_limit_refuses_the_next_request(backend) -> None:
    state, _ = backend
    g, a = group(), ask(tag(), TenantEntity("key:k", rpm=3))
    for i in range(3):
        assert await state.admit(admit(g, f"r{i}", a)) == Admitted(0)
    refused = await state.admit(admit(g, "r3", a))
    assert isinstance(refused, Refused) and (refused.limit, refused.entity) == ("rpm", 0)
    assert refused.retry_in is not None and 59 < refused.retry_in <= 60
    (use,) = await state.usage(g, ["d"])
    assert use.requests == 3  # the refused request never reached the group


async def test_team_limit_is_shared_by_its_keys(backend) -> None:
    state, _ = backend
    g, t = group(), "team:" + uuid.uuid4().hex
    team = TenantEntity("team", rpm=3)
    a, b = ask(t, TenantEntity("key:a"), team), ask(t, TenantEntity("key:b"), team)
    assert await state.admit(admit(g, "a1", a)) == Admitted(0)
    assert await state.admit(admit(g, "a2", a)) == Admitted(0)
    assert await state.admit(admit(g, "b1", b)) == Admitted(0)
    refused = await state.admit(admit(g, "b2", b))
    assert isinstance(refused, Refused) and (refused.limit, refused.entity) == ("rpm", 1)


async def test_parallel_limit_counts_waiting_and_running_requests(backend) -> None:
    state, _ = backend
    g, a = group(), ask(tag(), TenantEntity("key:k", parallel=2))
    one = Candidate("d", max_parallel=1)
    assert await state.admit(admit(g, "r1", a, cand=one)) == Admitted(0)
    assert isinstance(await state.admit(admit(g, "r2", a, cand=one)), Waiting)
    refused = await state.admit(admit(g, "r3", a, cand=one))
    assert isinstance(refused, Refused) and refused.limit == "parallel"
    await state.release(Release(g, "d", "r1.1"))
    await state.tenant_release(TenantEnd(a, "r1"))
    assert await state.admit(admit(g, "r2", None, cand=one)) == Admitted(0)  # its turn
    assert isinstance(await state.admit(admit(g, "r3", a, cand=one)), Waiting)


async def test_full_line_leaves_no_tenant_reservation(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    a = ask(t, TenantEntity("key:k", parallel=5, rpm=10))
    one = Candidate("d", max_parallel=1)
    assert await state.admit(admit(g, "r1", a, cand=one)) == Admitted(0)
    assert isinstance(await state.admit(admit(g, "r2", a, cand=one, max_waiting=0)), Full)
    usage = await state.tenant_usage(t, a.entities[0])
    assert (usage.requests, usage.in_flight) == (1, 1)


async def test_tokens_are_reserved_then_reconciled(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    a = ask(t, TenantEntity("key:k", tpm=100))
    assert await state.admit(admit(g, "r1", a, tokens=80)) == Admitted(0)
    refused = await state.admit(admit(g, "r2", a, tokens=30))
    assert isinstance(refused, Refused) and refused.limit == "tpm"
    await state.release_with_tenant(Release(g, "d", "r1.1"), TenantEnd(a, "r1", 10))
    assert await state.admit(admit(g, "r2", a, tokens=30)) == Admitted(0)
    assert (await state.tenant_usage(t, a.entities[0])).tokens == 40


async def test_model_limits_apply_to_their_group_only(backend) -> None:
    state, _ = backend
    t = tag()
    key = TenantEntity("key:k", model_rpm=1)
    g1, g2 = group(), group()
    assert await state.admit(admit(g1, "r1", ask(t, key, group=g1))) == Admitted(0)
    refused = await state.admit(admit(g1, "r2", ask(t, key, group=g1)))
    assert isinstance(refused, Refused) and refused.limit == "model_rpm"
    assert await state.admit(admit(g2, "r3", ask(t, key, group=g2))) == Admitted(0)


async def test_budget_holds_the_most_a_call_can_cost(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    key = TenantEntity("key:k", budget=1000)
    assert await state.admit(admit(g, "r1", ask(t, key, cost=600))) == Admitted(0)
    refused = await state.admit(admit(g, "r2", ask(t, key, cost=600)))
    assert isinstance(refused, Refused) and refused.limit == "budget"
    assert refused.retry_in is None  # no budget_duration: it never resets
    await state.tenant_release(TenantEnd(ask(t, key, cost=600), "r1", 5, 300))
    assert (await state.tenant_usage(t, key)).spent == 300
    assert await state.admit(admit(g, "r2", ask(t, key, cost=600))) == Admitted(0)
    usage = await state.tenant_usage(t, key)
    assert (usage.spent, usage.reserved) == (300, 600)


async def test_spent_budget_refuses_even_free_requests(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    key = TenantEntity("key:k", budget=100)
    assert await state.admit(admit(g, "r1", ask(t, key, cost=50))) == Admitted(0)
    await state.tenant_release(TenantEnd(ask(t, key), "r1", 5, 150))  # cost more than held
    refused = await state.admit(admit(g, "r2", ask(t, key, cost=0)))
    assert isinstance(refused, Refused) and refused.limit == "budget"


async def test_budget_resets_every_period(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    key = TenantEntity("key:k", budget=100, period_ms=300)
    assert await state.admit(admit(g, "r1", ask(t, key, cost=10))) == Admitted(0)
    await state.tenant_release(TenantEnd(ask(t, key), "r1", 1, 100))
    refused = await state.admit(admit(g, "r2", ask(t, key)))
    assert isinstance(refused, Refused) and refused.retry_in is not None
    assert 0 < refused.retry_in <= 0.3
    await asyncio.sleep(refused.retry_in + 0.05)
    assert await state.admit(admit(g, "r2", ask(t, key))) == Admitted(0)
    assert (await state.tenant_usage(t, key)).spent == 0


async def test_soft_budget_is_reported_once_per_period(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    key = TenantEntity("key:k", soft_budget=100)
    crossed = []
    for i in range(3):
        assert await state.admit(admit(g, f"r{i}", ask(t, key))) == Admitted(0)
        released = await state.tenant_release(TenantEnd(ask(t, key), f"r{i}", 1, 60))
        crossed.append(released.soft_crossed)
    assert crossed == [(), (0,), ()]


async def test_renewal_keeps_a_parallel_slot_past_its_lease(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    a = ask(t, TenantEntity("key:k", parallel=1))
    assert await state.admit(admit(g, "r1", a, lease=0.3)) == Admitted(0)
    for _ in range(3):
        await asyncio.sleep(0.15)
        await state.tenant_renew(a, ["r1"], 0.3)
    refused = await state.admit(admit(g, "r2", a, lease=0.3))
    assert isinstance(refused, Refused) and refused.limit == "parallel"
    await asyncio.sleep(0.4)  # no renewal: the instance holding it is gone
    assert await state.admit(admit(g, "r2", a, lease=0.3)) == Admitted(0)


async def test_release_with_tenant_frees_both(backend) -> None:
    state, _ = backend
    g, t = group(), tag()
    a = ask(t, TenantEntity("key:k", parallel=1))
    one = Candidate("d", max_parallel=1)
    assert await state.admit(admit(g, "r1", a, cand=one)) == Admitted(0)
    cooled, released = await state.release_with_tenant(
        Release(g, "d", "r1.1", tokens_used=3), TenantEnd(a, "r1", 3, 7))
    assert cooled == 0.0 and released.soft_crossed == ()
    (use,) = await state.usage(g, ["d"])
    tenant = await state.tenant_usage(t, a.entities[0])
    assert (use.in_flight, tenant.in_flight, tenant.spent) == (0, 0, 7)
