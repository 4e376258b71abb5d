"""The pipelined Redis client against a real redis-server."""

from __future__ import annotations

import asyncio
import uuid
from importlib import resources

import pytest
import redis

from router.state.resp import RedisUnavailable, RespClient, ScriptError
from router.state.scripts import script, script_of
from tests.support.procs import free_port, spawn, stop, wait_port

pytestmark = pytest.mark.asyncio(loop_scope="function")


def client(url: str) -> RespClient:
    return RespClient(url, connect_timeout=1.0, op_timeout=2.0)


async def test_many_calls_in_flight_keep_their_order(redis_server) -> None:
    c = client(redis_server.url)
    key = f"resp-{uuid.uuid4().hex}"
    replies = await asyncio.gather(*(c.execute("INCR", key) for _ in range(500)))
    assert sorted(replies) == list(range(1, 501))
    # A caller that gives up does not shift anyone else's reply.
    slow = asyncio.ensure_future(c.execute("GET", key))
    slow.cancel()
    assert await c.execute("INCRBY", key, 10) == 510
    c.close()


async def test_scripts_are_loaded_when_redis_does_not_know_them(redis_server) -> None:
    c = client(redis_server.url)
    code = script_of(f"return ARGV[1] .. '-{uuid.uuid4().hex}'")
    admin = redis.Redis.from_url(redis_server.url)
    assert (await c.run_script(code, [], ["x"])).startswith(b"x-")
    assert code.function.encode() in str(admin.function_list()).encode()  # run as a function
    admin.function_flush()  # e.g. a Redis restarted empty
    assert (await c.run_script(code, [], ["y"])).startswith(b"y-")
    with pytest.raises(ScriptError):
        await c.run_script(script_of("return redis.call('NOSUCHCOMMAND')"), [], [])
    c.close()
    admin.close()


async def test_a_burst_on_a_fresh_redis_loads_each_script_once(redis_server) -> None:
    c = client(redis_server.url)
    tail = uuid.uuid4().hex
    code = script_of(f"return ARGV[1] .. '-{tail}'")
    admin = redis.Redis.from_url(redis_server.url)
    admin.function_flush()
    admin.config_resetstat()
    replies = await asyncio.gather(*(c.run_script(code, [], [str(i)]) for i in range(200)))
    assert replies == [f"{i}-{tail}".encode() for i in range(200)]
    assert admin.info("commandstats")["cmdstat_function|load"]["calls"] == 1
    c.close()
    admin.close()


async def test_every_state_script_loads_as_a_function(redis_server) -> None:
    """Each script's library defines its includes at the top (where only definitions may
    run) and its body as the function: a global, or a call at load time, would fail here."""
    admin = redis.Redis.from_url(redis_server.url)
    lua = resources.files("router.state").joinpath("lua")
    names = sorted(p.name for p in lua.iterdir() if p.name.endswith(".lua"))
    included = {n for n in names if "(include)" in (lua / n).read_text().split("\n", 3)[1]}
    assert {"common.lua", "tenant.lua"} <= included
    for name in sorted(set(names) - included):
        code = script(name)
        assert admin.function_load(code.library, replace=True) == code.function.encode(), name
    admin.close()


async def test_a_redis_without_functions_runs_scripts_by_sha(tmp_path) -> None:
    """Before Redis 7 (or for a user not allowed them) there is no FUNCTION: scripts run by
    SHA, loaded when missing, as before."""
    port = free_port()
    proc = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no", "--dir", str(tmp_path),
                  "--rename-command", "FUNCTION", "", "--rename-command", "FCALL", ""])
    try:
        wait_port(port, proc)
        c = client(f"redis://127.0.0.1:{port}/0")
        code = script_of("return {KEYS[1], ARGV[1]}")
        assert await c.run_script(code, ["k"], ["v"]) == [b"k", b"v"]
        admin = redis.Redis(port=port)
        admin.script_flush()
        assert await c.run_script(code, ["k"], ["w"]) == [b"k", b"w"]
        assert admin.info("commandstats")["cmdstat_evalsha"]["calls"] >= 2
        admin.close()
        c.close()
    finally:
        stop(proc)


async def test_password_db_and_reconnect_after_a_restart(tmp_path) -> None:
    port = free_port()

    def start() -> object:
        proc = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                      "--requirepass", "s3cret!pw", "--save", "", "--appendonly", "no",
                      "--dir", str(tmp_path)])
        wait_port(port, proc)
        return proc

    proc = start()
    try:
        with pytest.raises(RedisUnavailable) as info:
            await client(f"redis://:wrong@127.0.0.1:{port}/0").execute("PING")
        assert "wrong" not in str(info.value)
        c = client(f"redis://:s3cret%21pw@127.0.0.1:{port}/3")
        await c.execute("SET", "k", "in-db-3")
        direct = redis.Redis(port=port, password="s3cret!pw", db=3)
        assert direct.get("k") == b"in-db-3"
        direct.close()
        stop(proc)
        with pytest.raises(RedisUnavailable):
            await c.execute("PING")
        proc = start()
        assert await c.execute("PING") == b"PONG"  # reconnected by itself
        c.close()
    finally:
        stop(proc)  # type: ignore[arg-type]


async def test_subscription_delivers_messages(redis_server) -> None:
    c = client(redis_server.url)
    got: list[str] = []
    channel = f"chan-{uuid.uuid4().hex}"
    task = asyncio.ensure_future(c.subscribe(channel, got.append))
    for _ in range(50):
        if await c.execute("PUBLISH", channel, "first") == 1:
            break
        await asyncio.sleep(0.02)
    await c.execute("PUBLISH", channel, "second")
    for _ in range(50):
        if got == ["first", "second"]:
            break
        await asyncio.sleep(0.02)
    assert got == ["first", "second"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    c.close()
