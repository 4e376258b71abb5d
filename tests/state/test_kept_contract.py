"""A value kept with a release (a stored Responses conversation) on every backend: written by
the release itself, readable through the backend's key-value store, gone after its TTL."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from router.state.base import (
    AdmitRequest,
    Admitted,
    Candidate,
    Kept,
    Release,
    TenantAsk,
    TenantEnd,
    TenantEntity,
    Waiting,
)
from router.state.kv import kv_for

pytestmark = pytest.mark.asyncio(loop_scope="function")


def admit(g: str, rid: str, tenant: TenantAsk | None = None, **kw: object) -> AdmitRequest:
    return AdmitRequest(group=g, request_id=rid, slot_id=rid + ".1", priority=0, tokens=1,
                        candidates=[Candidate("d", max_parallel=1)], tenant=tenant,
                        **kw)  # type: ignore[arg-type]


def kept(ttl_ms: int = 60_000) -> Kept:
    return Kept("laneway:test:" + uuid.uuid4().hex, b'{"kept": true}', ttl_ms)


async def test_a_release_writes_what_it_keeps_and_frees_the_slot(backend) -> None:
    state, _ = backend
    g, value = "g-" + uuid.uuid4().hex[:8], kept()
    assert await state.admit(admit(g, "a")) == Admitted(0)
    await state.release(Release(g, "d", "a.1", tokens_used=3, keep=value))
    assert value.landed
    assert await kv_for(state).get(value.key) == b'{"kept": true}'
    assert await state.admit(admit(g, "b")) == Admitted(0)  # the one slot came back


async def test_the_last_release_with_its_tenant_keeps_too(backend) -> None:
    state, _ = backend
    g, value = "g-" + uuid.uuid4().hex[:8], kept()
    ask = TenantAsk(tag="key:" + uuid.uuid4().hex, entities=(TenantEntity("key:k", parallel=1),),
                    group="g")
    assert await state.admit(admit(g, "a", ask)) == Admitted(0)
    await state.release_with_tenant(Release(g, "d", "a.1", keep=value), TenantEnd(ask, "a", 5))
    assert value.landed and await kv_for(state).get(value.key) == value.value
    assert (await state.tenant_usage(ask.tag, ask.entities[0])).in_flight == 0
    assert await state.admit(admit(g, "b", ask)) == Admitted(0)


async def test_a_fair_share_correction_and_a_kept_value_go_together(backend) -> None:
    state, _ = backend
    g, value = "g-" + uuid.uuid4().hex[:8], kept()

    def fair(rid: str, tenant: str) -> AdmitRequest:
        return admit(g, rid, fair_tenant=tenant, fair_cost=10)

    assert await state.admit(fair("a0", "A")) == Admitted(0)
    assert isinstance(await state.admit(fair("b0", "B")), Waiting)
    # a0 used 1,000 weighted tokens, not 10: A's clock moves on, so B is served first next.
    await state.release(Release(g, "d", "a0.1", fair_tenant="A", fair_delta=990, keep=value))
    assert await kv_for(state).get(value.key) == value.value
    assert await state.admit(fair("b0", "B")) == Admitted(0)
    a1, b1 = await state.admit(fair("a1", "A")), await state.admit(fair("b1", "B"))
    assert isinstance(a1, Waiting) and isinstance(b1, Waiting)
    again = await state.admit(fair("a1", "A"))  # where a1 stands now that b1 has come
    assert isinstance(again, Waiting) and b1.position < again.position


async def test_a_kept_value_expires_after_its_ttl(backend) -> None:
    state, _ = backend
    g, value = "g-" + uuid.uuid4().hex[:8], kept(ttl_ms=30)
    assert await state.admit(admit(g, "a")) == Admitted(0)
    await state.release(Release(g, "d", "a.1", keep=value))
    kv, deadline = kv_for(state), time.monotonic() + 5
    while await kv.get(value.key) is not None:
        assert time.monotonic() < deadline, "the kept value outlived its TTL"
        await asyncio.sleep(0.01)
