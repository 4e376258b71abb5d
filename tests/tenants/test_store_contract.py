"""One contract for the tenant stores: in process, Redis, and Redis Cluster."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from router.state.memory import MemoryState
from router.state.redis_store import RedisState
from router.tenants.records import KeyRecord, Limits, TeamRecord, hash_key, new_key
from router.tenants.store import TenantConflict, tenant_store_for
from router.tenants.stored import Tenants
from tests.support.redis_server import RedisCluster, RedisServer

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest_asyncio.fixture(params=["memory", "redis", "redis-cluster"], loop_scope="function")
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Tenants]:
    if request.param == "memory":
        state: MemoryState | RedisState = MemoryState()
    elif request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        state = RedisState(server.url)
    else:
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        state = RedisState(cluster.url)
    tenants = tenant_store_for(state)
    assert tenants.name == ("memory" if request.param == "memory" else "redis")
    yield tenants
    await state.close()


def a_key(**kw: object) -> tuple[str, KeyRecord]:
    key = new_key()
    return key, KeyRecord(hash_key(key), key[-4:], **kw)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_created_key_authenticates_and_reads_back(store: Tenants) -> None:
    key, record = a_key(key_alias=name("alias"), limits=Limits(rpm_limit=5, models=("m",)),
                        metadata={"owner": "ops"})
    created = await store.create_key(record)
    assert created.created_at > 0
    assert await store.authenticate(key) == created
    assert await store.get_key(record.key_hash) == created
    assert await store.get_key_by_alias(record.key_alias or "") == created
    assert await store.authenticate(key + "x") is None
    assert (await store.check(key + "x")).problem == "unknown"


async def test_creating_the_same_key_twice_is_a_conflict(store: Tenants) -> None:
    _, record = a_key()
    await store.create_key(record)
    with pytest.raises(TenantConflict) as exc:
        await store.create_key(record)
    assert exc.value.field == "key"


async def test_aliases_are_unique_even_when_created_at_once(store: Tenants) -> None:
    alias = name("same")
    results = await asyncio.gather(*(store.create_key(a_key(key_alias=alias)[1])
                                     for _ in range(4)), return_exceptions=True)
    assert sum(isinstance(r, KeyRecord) for r in results) == 1
    assert all(isinstance(r, TenantConflict) and r.field == "key_alias"
               for r in results if not isinstance(r, KeyRecord))
    _, other = a_key(key_alias=name("other"))
    await store.create_key(other)
    with pytest.raises(TenantConflict):
        await store.update_key(other.key_hash,
                               lambda r: dataclasses.replace(r, key_alias=alias))


async def test_an_alias_follows_renames_and_is_free_after_delete(store: Tenants) -> None:
    first, second = name("first"), name("second")
    _, record = a_key(key_alias=first)
    await store.create_key(record)
    await store.update_key(record.key_hash, lambda r: dataclasses.replace(r, key_alias=second))
    assert await store.get_key_by_alias(first) is None
    assert (await store.get_key_by_alias(second) or record).key_hash == record.key_hash
    _, taker = a_key(key_alias=first)
    await store.create_key(taker)  # the old alias was released
    assert await store.delete_key(record.key_hash)
    assert not await store.delete_key(record.key_hash)
    assert await store.get_key_by_alias(second) is None
    await store.create_key(a_key(key_alias=second)[1])


async def test_blocked_expired_and_deleted_keys_stop_at_once(store: Tenants) -> None:
    key, record = a_key()
    await store.create_key(record)
    assert await store.authenticate(key) is not None  # now cached
    await store.update_key(record.key_hash, lambda r: dataclasses.replace(r, blocked=True))
    assert (await store.check(key)).problem == "blocked"
    await store.update_key(record.key_hash, lambda r: dataclasses.replace(r, blocked=False))
    assert await store.authenticate(key) is not None
    await store.update_key(record.key_hash,
                           lambda r: dataclasses.replace(r, expires=time.time() - 1))
    assert (await store.check(key)).problem == "expired"
    await store.delete_key(record.key_hash)
    assert (await store.check(key)).problem == "unknown"


async def test_an_unknown_key_is_remembered_until_it_is_created(store: Tenants) -> None:
    key, record = a_key()
    assert await store.authenticate(key) is None
    assert len(store.keys) == 1  # the miss is cached
    await store.create_key(record)
    assert await store.authenticate(key) is not None


async def test_updates_are_atomic(store: Tenants) -> None:
    _, record = a_key(metadata={"n": 0})
    await store.create_key(record)

    def bump(r: KeyRecord) -> KeyRecord:
        return dataclasses.replace(r, metadata={"n": r.metadata["n"] + 1})

    await asyncio.gather(*(store.update_key(record.key_hash, bump) for _ in range(6)))
    stored = await store.get_key(record.key_hash)
    assert stored is not None and stored.metadata["n"] == 6
    assert await store.update_key(hash_key("nope"), bump) is None


async def test_listing_pages_and_filters_by_team(store: Tenants) -> None:
    team = await store.create_team(TeamRecord(name("team"), limits=Limits(tpm_limit=9)))
    mine = []
    for i in range(5):
        _, record = a_key(team_id=team.team_id, created_at=time.time() + i)
        mine.append((await store.create_key(record)).key_hash)
    first = await store.list_keys(team_id=team.team_id, page=1, size=3)
    second = await store.list_keys(team_id=team.team_id, page=2, size=3)
    assert first.total == second.total == 5
    assert [r.key_hash for r in [*first.items, *second.items]] == mine
    everything = await store.list_keys(size=10_000)
    assert set(mine) <= {r.key_hash for r in everything.items}
    # a key moving to another team moves in the listings
    other = await store.create_team(TeamRecord(name("team")))
    await store.update_key(mine[0], lambda r: dataclasses.replace(r, team_id=other.team_id))
    assert (await store.list_keys(team_id=team.team_id)).total == 4
    assert [r.key_hash for r in (await store.list_keys(team_id=other.team_id)).items] == [
        mine[0]]


async def test_teams_create_update_list_and_delete_with_their_keys(store: Tenants) -> None:
    team = await store.create_team(TeamRecord(name("team"), team_alias="Research"))
    with pytest.raises(TenantConflict):
        await store.create_team(TeamRecord(team.team_id))
    key, record = a_key(team_id=team.team_id)
    await store.create_key(record)
    assert (await store.check(key)).team == team
    updated = await store.update_team(
        team.team_id, lambda t: dataclasses.replace(t, blocked=True))
    assert updated is not None and updated.blocked and updated.created_at == team.created_at
    assert (await store.check(key)).problem == "team blocked"
    listed = await store.list_teams(size=10_000)
    assert team.team_id in {t.team_id for t in listed.items}
    assert await store.delete_team(team.team_id)
    assert await store.get_team(team.team_id) is None
    assert await store.get_key(record.key_hash) is None
    assert team.team_id not in {
        t.team_id for t in (await store.list_teams(size=10_000)).items}
    assert await store.update_team(team.team_id, lambda t: t) is None
    assert not await store.delete_team(team.team_id)


async def test_regenerating_moves_the_record_to_a_new_key(store: Tenants) -> None:
    old_key, record = a_key(key_alias=name("regen"), limits=Limits(rpm_limit=3))
    await store.create_key(record)
    assert await store.authenticate(old_key) is not None
    fresh = new_key()
    moved = await store.replace_key(record.key_hash, hash_key(fresh), fresh[-4:])
    assert moved is not None and moved.limits.rpm_limit == 3 and moved.key_last4 == fresh[-4:]
    assert await store.authenticate(old_key) is None
    assert await store.authenticate(fresh) is not None
    assert (await store.get_key_by_alias(record.key_alias or "") or record).key_hash == (
        moved.key_hash)
    assert await store.replace_key(record.key_hash, hash_key(new_key()), "abcd") is None


async def test_put_replaces_and_declared_records_load_on_first_use(store: Tenants) -> None:
    key, record = a_key(limits=Limits(rpm_limit=1))
    await store.create_key(record)
    await store.put_key(dataclasses.replace(record, limits=Limits(rpm_limit=2)))
    assert (await store.authenticate(key) or record).limits.rpm_limit == 2
    team = TeamRecord(name("declared"))
    declared_key, declared = a_key(team_id=team.team_id)
    seeded = Tenants(store.backend, name=store.name, declared=([team], [declared]))
    assert (await seeded.check(declared_key)).team is not None
    assert await store.get_team(team.team_id) is not None


async def test_spend_reads_zero_until_admission_keeps_it(store: Tenants) -> None:
    assert (await store.spend("key", hash_key("x"))).amount == 0.0


@pytest.mark.parametrize("where", ["redis", "redis-cluster"])
async def test_a_change_on_one_instance_reaches_the_others_cache(
        request: pytest.FixtureRequest, where: str) -> None:
    server = request.getfixturevalue("redis_server" if where == "redis" else "redis_cluster")
    states = [RedisState(server.url), RedisState(server.url)]
    here, there = (tenant_store_for(s, cache_ttl=60) for s in states)
    key, record = a_key()
    await here.create_key(record)
    assert await there.authenticate(key) is not None  # cached there for a minute
    await asyncio.sleep(0.05)  # (the subscription started with that first lookup)
    await here.update_key(record.key_hash, lambda r: dataclasses.replace(r, blocked=True))
    deadline = time.monotonic() + 1.0
    while await there.authenticate(key) is not None:
        assert time.monotonic() < deadline, "the block did not reach the other instance"
        await asyncio.sleep(0.01)
    for state in states:
        await state.close()
