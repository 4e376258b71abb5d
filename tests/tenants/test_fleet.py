"""Tenants across a fleet: two gateway processes on one real Redis, and a backup restored into
a fresh one."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.support.gateway import Gateway, clean_env, start_gateway, write_config
from tests.support.procs import PYTHON
from tests.support.redis_server import RedisServer, start_redis

MASTER = "sk-master-fleet-0123456789"
DECLARED = "sk-declared-fleet-key-abcdefgh"
ENV = {"TEST_MASTER_KEY": MASTER, "TEST_DECLARED_KEY": DECLARED}


def config_for(server: RedisServer) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": "mocked", "litellm_params": {
            "model": "gpt-4o-mini", "mock_response": "hi"}}],
        "router_settings": {"redis_url": server.url},
        "general_settings": {"master_key": "os.environ/TEST_MASTER_KEY"},
        # A minute: a change that reaches another instance in time did so by its notice.
        "tenants": {"cache_ttl": 60, "keys": [{"key": "os.environ/TEST_DECLARED_KEY",
                                               "key_alias": "fleet-declared"}]},
    }


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    started = start_redis()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def fleet(server: RedisServer) -> Iterator[tuple[Gateway, Gateway]]:
    env = {**clean_env(), **ENV}
    one = start_gateway(config_for(server), env, key=MASTER)
    two = start_gateway(config_for(server), env, key=MASTER)
    yield one, two
    for gateway in (one, two):
        assert DECLARED not in gateway.stop()


def recognised(gateway: Gateway, key: str) -> int:
    """401 for a key the gateway refuses, 403 for a valid virtual key (not allowed to manage)."""
    with httpx.Client(base_url=gateway.url) as client:
        return client.get("/key/list", headers={"authorization": f"Bearer {key}"}).status_code


def generate(gateway: Gateway, **fields: Any) -> dict[str, Any]:
    with gateway.client() as client:
        answer = client.post("/key/generate", json=fields)
    assert answer.status_code == 200, answer.text
    return answer.json()


def refused_within(gateway: Gateway, key: str, seconds: float) -> float:
    started = time.monotonic()
    while recognised(gateway, key) != 401:
        assert time.monotonic() - started < seconds, "the other instance still takes the key"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_key_made_on_one_instance_works_on_the_other(fleet: tuple[Gateway, Gateway]) -> None:
    one, two = fleet
    assert recognised(two, "sk-made-up-key-not-stored-0") == 401  # remembered as unknown
    made = generate(one, key="sk-made-up-key-not-stored-0", key_alias="fleet-a")
    assert recognised(two, made["key"]) == 403
    with two.client() as client:
        assert client.get("/key/info", params={"key": made["token"]}).json()[
            "info"]["key_alias"] == "fleet-a"
    assert recognised(two, DECLARED) == 403


@pytest.mark.parametrize("change", ["block", "delete", "regenerate", "team"])
def test_a_change_on_one_instance_stops_the_key_on_the_other_within_a_second(
        fleet: tuple[Gateway, Gateway], change: str) -> None:
    one, two = fleet
    with one.client() as client:
        team = client.post("/team/new", json={}).json()["team_id"]
    made = generate(one, team_id=team)
    assert recognised(two, made["key"]) == 403  # now in the other instance's cache
    with one.client() as client:
        if change == "block":
            answer = client.post("/key/block", json={"key": made["key"]})
        elif change == "delete":
            answer = client.post("/key/delete", json={"keys": [made["token"]]})
        elif change == "regenerate":
            answer = client.post("/key/regenerate", json={"key": made["token"]})
        else:
            answer = client.post("/team/update", json={"team_id": team, "blocked": True})
    assert answer.status_code == 200, answer.text
    assert refused_within(two, made["key"], 1.0) < 1.0
    if change == "regenerate":
        assert recognised(two, answer.json()["key"]) == 403


def _values(r: redis.Redis, name: bytes) -> list[bytes]:
    kind = r.type(name).decode()
    if kind == "string":
        return [r.get(name) or b""]
    if kind == "hash":
        return [b for pair in r.hgetall(name).items() for b in pair]
    if kind == "zset":
        return list(r.zrange(name, 0, -1))
    if kind == "set":
        return list(r.smembers(name))
    if kind == "list":
        return list(r.lrange(name, 0, -1))
    return []


def test_redis_holds_no_key_in_plaintext(server: RedisServer,
                                         fleet: tuple[Gateway, Gateway]) -> None:
    one, two = fleet
    keys = [DECLARED, MASTER]
    keys += [generate(one, key_alias=f"scan-{i}")["key"] for i in range(3)]
    keys.append(generate(two, key="sk-chosen-for-the-scan-test")["key"])
    with one.client() as client:
        keys.append(client.post("/key/regenerate", json={"key": keys[2]}).json()["key"])
    r = redis.Redis.from_url(server.url)
    names = list(r.scan_iter(count=1000))
    assert len(names) >= 10
    live = [DECLARED, *keys[3:]]  # keys[2] was regenerated: its record is gone
    hashes = {hashlib.sha256(k.encode()).hexdigest().encode() for k in live}
    seen_hashes = set()
    for name in names:
        blobs = [name, r.dump(name) or b"", *_values(r, name)]
        for key in keys:
            assert not any(key.encode() in blob for blob in blobs), name
            assert not any(key[3:].encode() in blob for blob in blobs), name
        seen_hashes |= {h for h in hashes if any(h in blob for blob in blobs)}
    assert seen_hashes == hashes  # the scan did look at the records
    r.close()


def run_cli(*args: str, config: dict[str, Any], stdin: bytes = b"") -> subprocess.CompletedProcess:
    path = write_config(config)
    return subprocess.run([PYTHON, "-m", "handler.cli", "keys", *args, "--config", str(path)],
                          input=stdin, capture_output=True, timeout=60,
                          env={**clean_env(), **ENV, "CONFIG_FILE_PATH": "",
                               "LANEWAY_CONFIG": ""})


def test_export_and_import_restore_keys_into_a_fresh_redis(
        server: RedisServer, fleet: tuple[Gateway, Gateway]) -> None:
    one, _ = fleet
    with one.client() as client:
        client.post("/team/new", json={"team_id": "backup-team", "max_budget": 9})
    made = generate(one, key_alias="backup-me", team_id="backup-team", rpm_limit=4,
                    models=["mocked"], metadata={"why": "restore"})
    spent = httpx.post(f"{one.url}/v1/chat/completions", json={
        "model": "mocked", "messages": [{"role": "user", "content": "hello"}]},
        headers={"authorization": f"Bearer {made['key']}"})
    assert spent.status_code == 200 and float(spent.headers["x-litellm-response-cost"]) > 0
    exported = run_cli("export", config=config_for(server))
    assert exported.returncode == 0, exported.stderr
    lines = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert made["key"].encode() not in exported.stdout and DECLARED.encode() not in (
        exported.stdout)
    mine = next(line for line in lines if line.get("token") == made["token"])
    assert mine["type"] == "key" and mine["rpm_limit"] == 4
    assert abs(mine["spend"] - float(spent.headers["x-litellm-response-cost"])) < 1e-9
    assert [line["type"] for line in lines].index("key") > [
        line["type"] for line in lines].index("team")  # teams first: keys refer to them

    fresh = start_redis()
    try:
        imported = run_cli("import", config=config_for(fresh), stdin=exported.stdout)
        assert imported.returncode == 0, imported.stderr
        assert b"imported" in imported.stderr
        restored = start_gateway(config_for(fresh), {**clean_env(), **ENV}, key=MASTER)
        try:
            assert recognised(restored, made["key"]) == 403
            with restored.client() as client:
                info = client.get("/key/info", params={"key": made["token"]}).json()["info"]
                team = client.get("/team/info", params={"team_id": "backup-team"}).json()
        finally:
            restored.stop()
        with one.client() as client:
            before = client.get("/key/info", params={"key": made["token"]}).json()["info"]
        assert info == before
        assert team["team_info"]["max_budget"] == 9
    finally:
        fresh.stop()


def test_an_import_reports_bad_lines_by_number(server: RedisServer) -> None:
    bad = b'{"type": "key", "token": "abc"}\nnot json\n{"type": "team", "team_id": "ok-team"}\n'
    done = run_cli("import", config=config_for(server), stdin=bad)
    assert done.returncode == 1
    assert b"line 1:" in done.stderr and b"line 2:" in done.stderr
    assert b"imported 1 team(s) and 0 key(s)" in done.stderr
