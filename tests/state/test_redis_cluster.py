"""The Redis backend on a real three-primary Redis Cluster, given the address of one node only:
each group's keys live on the node owning its slot, wake-ups cross nodes, and a group whose slot
is moved to another node (MOVED) keeps its state, and one half-way through moving (ASK, then
TRYAGAIN) waits for the move; when a primary dies, its promoted replica is found."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from router.errors import ServiceUnavailable
from router.state.base import AdmitRequest, Admitted, Candidate, Release, Waiting
from router.state.cluster import key_slot
from router.state.keys import GroupKeys
from router.state.redis_store import RedisState
from tests.state.conftest import Wakes
from tests.support.redis_server import RedisCluster, start_redis_cluster

on_loop = pytest.mark.asyncio(loop_scope="function")

_names = (f"cl-{n}" for n in itertools.count())


def group_on(cluster: RedisCluster, node: int) -> str:
    """A fresh group name whose keys the given node owns."""
    return next(g for g in _names if cluster.owner_of(slot_of(g)) == node)


def slot_of(group: str) -> int:
    return key_slot(GroupKeys.of(group).line)


def req(g: str, rid: str, c: Candidate, **kw: object) -> AdmitRequest:
    return AdmitRequest(group=g, request_id=rid, slot_id=rid + ".1", priority=0, tokens=1,
                        candidates=(c,), **kw)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="function")
async def state(redis_cluster: RedisCluster) -> AsyncIterator[tuple[RedisState, Wakes]]:
    state = RedisState(redis_cluster.url)  # node 0's address, nothing else
    wakes = Wakes()
    await state.start(wakes)
    await asyncio.sleep(0.05)  # subscription in place
    yield state, wakes
    await state.close()


def test_slots_agree_with_redis(redis_cluster: RedisCluster) -> None:
    keys = ["foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}",
            "{}", "}{", "ключ{é}", GroupKeys.of("gpt-4o").line,
            GroupKeys.of("openai/*").deployment("a1b2").rpm, GroupKeys.of("we{ird}").line]
    redis = redis_cluster.client(0)
    assert [key_slot(k) for k in keys] == [redis.cluster("KEYSLOT", k) for k in keys]


@on_loop
async def test_each_group_is_kept_by_the_node_owning_its_slot(redis_cluster, state) -> None:
    backend, _ = state
    c = Candidate("d1", rpm=5)
    for node in range(3):
        g = group_on(redis_cluster, node)
        assert await backend.admit(req(g, "a", c)) == Admitted(0)
        rpm_key = GroupKeys.of(g).deployment("d1").rpm
        owner = redis_cluster.client(node)
        assert owner.exists(rpm_key) == 1
        assert owner.cluster("COUNTKEYSINSLOT", slot_of(g)) >= 1


@on_loop
async def test_wake_up_published_on_another_node_reaches_the_waiter(redis_cluster, state) -> None:
    backend, wakes = state
    g, c = group_on(redis_cluster, 2), Candidate("d", max_parallel=1)
    assert await backend.admit(req(g, "busy", c)) == Admitted(0)
    assert isinstance(await backend.admit(req(g, "next", c)), Waiting)
    await backend.release(Release(g, "d", "busy.1"))  # runs on node 2; we listen on node 0
    await wakes.wait_for("next")
    assert await backend.admit(req(g, "next", c)) == Admitted(0)


@on_loop
async def test_a_resharded_group_keeps_its_limits(redis_cluster, state) -> None:
    backend, _ = state
    g, c = group_on(redis_cluster, 1), Candidate("d", rpm=2)
    assert await backend.admit(req(g, "a", c)) == Admitted(0)
    assert await backend.admit(req(g, "b", c)) == Admitted(0)
    _move_slot(redis_cluster, slot_of(g), source=1, target=2)
    # The client still maps the slot to node 1: it follows the MOVED reply to node 2, where the
    # two admissions of this minute moved along with the keys.
    assert isinstance(await backend.admit(req(g, "c", c)), Waiting)
    assert redis_cluster.client(2).exists(GroupKeys.of(g).deployment("d").rpm) == 1


@on_loop
async def test_a_new_group_on_a_moving_slot_waits_for_the_move(redis_cluster, state) -> None:
    backend, _ = state
    g, c = group_on(redis_cluster, 0), Candidate("d", rpm=1)
    slot = slot_of(g)
    redis_cluster.client(1).cluster("SETSLOT", slot, "IMPORTING", _node_id(redis_cluster, 0))
    redis_cluster.client(0).cluster("SETSLOT", slot, "MIGRATING", _node_id(redis_cluster, 1))
    # Node 0 answers ASK (the group has no keys there); node 1 answers TRYAGAIN (a script's
    # keys must all exist while the slot is importing). The call waits for the move to end.
    admit = asyncio.ensure_future(backend.admit(req(g, "a", c)))
    await asyncio.sleep(0.3)
    assert not admit.done()
    for node in range(3):
        redis_cluster.client(node).cluster("SETSLOT", slot, "NODE", _node_id(redis_cluster, 1))
    assert await asyncio.wait_for(admit, 2) == Admitted(0)
    assert redis_cluster.client(1).exists(GroupKeys.of(g).deployment("d").rpm) == 1
    assert isinstance(await backend.admit(req(g, "b", c)), Waiting)


def _node_id(cluster: RedisCluster, node: int) -> str:
    return cluster.client(node).cluster("MYID").decode()


def _move_slot(cluster: RedisCluster, slot: int, *, source: int, target: int) -> None:
    """Move one slot and its keys the way `redis-cli --cluster reshard` does."""
    src, dst = cluster.client(source), cluster.client(target)
    dst.cluster("SETSLOT", slot, "IMPORTING", _node_id(cluster, source))
    src.cluster("SETSLOT", slot, "MIGRATING", _node_id(cluster, target))
    while keys := src.cluster("GETKEYSINSLOT", slot, 100):
        src.migrate("127.0.0.1", cluster.nodes[target].port, keys, 0, 5000)
    for node in range(len(cluster.nodes)):
        cluster.client(node).cluster("SETSLOT", slot, "NODE", _node_id(cluster, target))


def _wait_replicated(cluster: RedisCluster, node: int) -> None:
    """Until the node's replica has acknowledged every write the node has taken. (WAIT would
    only cover the writes of its own connection, and the backend wrote on another one.)"""
    primary = cluster.client(node)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        info = primary.info("replication")
        replica = info.get("slave0")
        if isinstance(replica, dict) and int(replica["offset"]) >= int(info["master_repl_offset"]):
            return
        time.sleep(0.01)
    raise AssertionError("the replica did not catch up")


@on_loop
async def test_a_promoted_replica_takes_over_its_primarys_groups() -> None:
    cluster = start_redis_cluster(primaries=3, replicas=1)
    backend = RedisState(cluster.url)
    try:
        await backend.start(Wakes())
        g, c = group_on(cluster, 1), Candidate("d", rpm=3)
        assert await backend.admit(req(g, "a", c)) == Admitted(0)
        assert await backend.admit(req(g, "b", c)) == Admitted(0)
        _wait_replicated(cluster, 1)  # the replica has both
        cluster.nodes[1].kill()
        # Until the replica is promoted, calls for the group fail fast as an outage (503)...
        outages = 0
        while True:
            try:
                third = await backend.admit(req(g, "c", c))
                break
            except ServiceUnavailable:
                outages += 1
                assert outages < 200, "no replica took over"
                await asyncio.sleep(0.05)
        # ...then the client finds the new primary by itself, with the minute's count intact.
        assert third == Admitted(0)
        assert isinstance(await backend.admit(req(g, "d", c)), Waiting)
        assert cluster.owner_of(slot_of(g)) == 4  # node 1's replica
    finally:
        await backend.close()
        cluster.stop()
