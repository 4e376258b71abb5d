"""The key and team management API through a real gateway process (in-process state)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import openai
import pytest

from tests.support.gateway import Gateway, clean_env, start_gateway

MASTER = "sk-master-tenants-0123456789"
DECLARED = "sk-declared-from-the-config-42"
MODELS = [{"model_name": "mocked", "litellm_params": {"model": "gpt-4o-mini",
                                                     "mock_response": "hi"}}]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    config = {
        "model_list": MODELS,
        "general_settings": {"master_key": "os.environ/TEST_MASTER_KEY"},
        "tenants": {
            "teams": [{"team_id": "declared-team", "rpm_limit": 60}],
            "keys": [{"key": "os.environ/TEST_DECLARED_KEY", "key_alias": "declared",
                      "team_id": "declared-team", "models": ["mocked"]}],
        },
    }
    env = {**clean_env(), "TEST_MASTER_KEY": MASTER, "TEST_DECLARED_KEY": DECLARED}
    gateway = start_gateway(config, env, key=MASTER)
    yield gateway
    output = gateway.stop()
    assert DECLARED not in output


@pytest.fixture
def http(gw: Gateway) -> Iterator[httpx.Client]:
    with gw.client() as client:
        yield client


def as_key(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def test_generate_returns_the_key_once_and_stores_only_its_hash(http: httpx.Client) -> None:
    made = http.post("/key/generate", json={"key_alias": "gen-once", "models": ["mocked"],
                                            "rpm_limit": 10, "duration": "1h",
                                            "metadata": {"owner": "ops"}})
    assert made.status_code == 200, made.text
    body = made.json()
    key = body["key"]
    assert key.startswith("sk-") and len(key) >= 35
    assert body["token"] == hashlib.sha256(key.encode()).hexdigest()
    assert body["key_name"] == f"sk-...{key[-4:]}"
    expires = datetime.fromisoformat(body["expires"]).timestamp()
    assert abs(expires - (time.time() + 3600)) < 60
    for ask in (key, body["token"]):
        info = http.get("/key/info", params={"key": ask})
        assert info.status_code == 200
        shown = info.json()
        assert key not in info.text
        assert shown["key"] == body["token"]
        assert shown["info"]["rpm_limit"] == 10 and shown["info"]["metadata"] == {"owner": "ops"}
        assert shown["info"]["spend"] == 0.0 and shown["info"]["budget_reset_at"] is None
    listed = http.get("/key/list", params={"size": 100}).json()
    assert body["token"] in listed["keys"] and key not in str(listed)


def test_the_caller_may_choose_the_key(http: httpx.Client) -> None:
    chosen = "sk-chosen-by-the-caller-123"
    made = http.post("/key/generate", json={"key": chosen})
    assert made.status_code == 200 and made.json()["key"] == chosen
    again = http.post("/key/generate", json={"key": chosen})
    assert again.status_code == 400 and error_of(again)["param"] == "key"


@pytest.mark.parametrize(("body", "param"), [
    ({"rpm_limit": -1}, "rpm_limit"),
    ({"budget_duration": "soon"}, "budget_duration"),
    ({"model_tpm_limit": {"mocked": "lots"}}, "model_tpm_limit"),
    ({"default_priority": 2**21}, "default_priority"),
    ({"fair_share_weight": 0}, "fair_share_weight"),
    ({"key": "not-a-virtual-key"}, "key"),
    ({"team_id": "no-such-team"}, "team_id"),
    ({"user_role": "admin"}, "user_role"),
])
def test_bad_fields_are_400s_that_name_them(http: httpx.Client, body: dict[str, object],
                                           param: str) -> None:
    answer = http.post("/key/generate", json=body)
    assert answer.status_code == 400, answer.text
    error = error_of(answer)
    assert error["param"] == param and param in str(error["message"])


def test_the_sdk_reads_management_errors(gw: Gateway) -> None:
    master = openai.OpenAI(base_url=gw.url, api_key=MASTER, max_retries=0)
    with pytest.raises(openai.BadRequestError) as exc:
        master.post("/key/generate", cast_to=httpx.Response, body={"tpm_limit": "many"})
    assert exc.value.param == "tpm_limit"  # type: ignore[attr-defined]
    stranger = openai.OpenAI(base_url=gw.url, api_key="sk-nobody-knows-this-key",
                             max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.get("/key/list", cast_to=httpx.Response)


def test_only_the_master_key_manages(gw: Gateway, http: httpx.Client) -> None:
    key = http.post("/key/generate", json={}).json()["key"]
    with httpx.Client(base_url=gw.url) as anyone:
        missing = anyone.get("/key/list")
        assert missing.status_code == 401 and error_of(missing)["type"] == "authentication_error"
        assert anyone.get("/team/list", headers=as_key("sk-unknown-key-000000")).status_code == 401
        virtual = anyone.post("/team/new", json={}, headers=as_key(key))
        assert virtual.status_code == 403 and error_of(virtual)["type"] == "permission_error"
        assert http.post("/key/block", json={"key": key}).json()["blocked"] is True
        blocked = anyone.get("/key/list", headers=as_key(key))
        assert blocked.status_code == 401 and "blocked" in str(error_of(blocked)["message"])
        assert http.post("/key/unblock", json={"key": key}).json()["blocked"] is False
        assert anyone.get("/key/list", headers=as_key(key)).status_code == 403


def test_update_keeps_aliases_unique_and_null_resets(http: httpx.Client) -> None:
    first = http.post("/key/generate", json={"key_alias": "upd-a", "tpm_limit": 5}).json()
    second = http.post("/key/generate", json={"key_alias": "upd-b"}).json()
    taken = http.post("/key/update", json={"key": second["token"], "key_alias": "upd-a"})
    assert taken.status_code == 400 and error_of(taken)["param"] == "key_alias"
    updated = http.post("/key/update", json={"key": first["key"], "tpm_limit": None,
                                             "key_alias": "upd-c", "priority_floor": 2})
    assert updated.status_code == 200, updated.text
    assert updated.json()["tpm_limit"] is None and updated.json()["priority_floor"] == 2
    assert first["key"] not in updated.text
    # the old alias is free again
    assert http.post("/key/update", json={"key": second["key"],
                                          "key_alias": "upd-a"}).status_code == 200
    missing = http.post("/key/update", json={"key": "sk-never-generated-0000", "rpm_limit": 1})
    assert missing.status_code == 404
    assert http.post("/key/update", json={"rpm_limit": 1}).status_code == 400


def test_delete_by_key_or_alias(gw: Gateway, http: httpx.Client) -> None:
    one = http.post("/key/generate", json={}).json()
    two = http.post("/key/generate", json={"key_alias": "del-me"}).json()
    gone = http.post("/key/delete", json={"keys": [one["key"]]})
    assert gone.json() == {"deleted_keys": [one["token"]]}
    assert http.post("/key/delete", json={"key_aliases": ["del-me"]}).json() == {
        "deleted_keys": [two["token"]]}
    assert http.post("/key/delete", json={"keys": [one["key"]]}).status_code == 404
    assert http.post("/key/delete", json={}).status_code == 400
    with httpx.Client(base_url=gw.url) as anyone:
        assert anyone.get("/key/list", headers=as_key(one["key"])).status_code == 401


def test_regenerate_moves_everything_to_a_new_key(gw: Gateway, http: httpx.Client) -> None:
    old = http.post("/key/generate", json={"key_alias": "regen", "rpm_limit": 7}).json()
    fresh = http.post("/key/regenerate", json={"key": old["key"], "tpm_limit": 99}).json()
    assert fresh["key"] != old["key"] and fresh["key_alias"] == "regen"
    assert fresh["rpm_limit"] == 7 and fresh["tpm_limit"] == 99
    again = http.post(f"/key/{fresh['token']}/regenerate", json={})
    assert again.status_code == 200
    with httpx.Client(base_url=gw.url) as anyone:
        assert anyone.get("/key/list", headers=as_key(old["key"])).status_code == 401
        assert anyone.get("/key/list", headers=as_key(fresh["key"])).status_code == 401
        assert anyone.get("/key/list", headers=as_key(again.json()["key"])).status_code == 403
    assert http.post("/key/regenerate", json={"key": old["key"]}).status_code == 404


def test_list_pages_and_filters(http: httpx.Client) -> None:
    team = http.post("/team/new", json={"team_alias": "pager"}).json()["team_id"]
    made = [http.post("/key/generate", json={"team_id": team}).json()["token"]
            for _ in range(3)]
    page1 = http.get("/key/list", params={"team_id": team, "size": 2, "page": 1}).json()
    page2 = http.get("/key/list", params={"team_id": team, "size": 2, "page": 2}).json()
    assert page1["total_count"] == 3 and page1["total_pages"] == 2
    assert set(page1["keys"] + page2["keys"]) == set(made)
    full = http.get("/key/list", params={"team_id": team, "return_full_object": "true"}).json()
    assert {k["token"] for k in full["keys"]} == set(made)
    assert all(k["team_id"] == team for k in full["keys"])
    for bad in ({"size": 0}, {"size": 101}, {"page": "x"}):
        answer = http.get("/key/list", params=bad)
        assert answer.status_code == 400 and error_of(answer)["param"] in bad


def test_teams_lifecycle(gw: Gateway, http: httpx.Client) -> None:
    made = http.post("/team/new", json={"team_id": "life", "max_budget": 5,
                                        "budget_duration": "30d", "tpm_limit": 1000})
    assert made.status_code == 200 and made.json()["max_budget"] == 5
    assert http.post("/team/new", json={"team_id": "life"}).status_code == 400
    key = http.post("/key/generate", json={"team_id": "life"}).json()
    updated = http.post("/team/update", json={"team_id": "life", "blocked": True})
    assert updated.json()["data"]["blocked"] is True
    with httpx.Client(base_url=gw.url) as anyone:
        refused = anyone.get("/key/list", headers=as_key(key["key"]))
        assert refused.status_code == 401 and "team" in str(error_of(refused)["message"])
    info = http.get("/team/info", params={"team_id": "life"}).json()
    assert info["team_info"]["tpm_limit"] == 1000 and info["team_info"]["spend"] == 0.0
    assert [k["token"] for k in info["keys"]] == [key["token"]]
    assert "life" in [t["team_id"] for t in http.get("/team/list").json()]
    assert http.post("/team/update", json={"team_id": "life", "colour": "red"}).json()[
        "error"]["param"] == "colour"
    assert http.post("/team/delete", json={"team_ids": ["life"]}).json() == {
        "deleted_teams": ["life"]}
    assert http.get("/key/info", params={"key": key["token"]}).status_code == 404
    assert http.get("/team/info", params={"team_id": "life"}).status_code == 404
    assert http.post("/team/delete", json={"team_ids": ["life"]}).status_code == 404


def test_config_declared_keys_and_teams(gw: Gateway, http: httpx.Client) -> None:
    token = hashlib.sha256(DECLARED.encode()).hexdigest()
    info = http.get("/key/info", params={"key": token}).json()["info"]
    assert info["key_alias"] == "declared" and info["team_id"] == "declared-team"
    assert info["key_name"] == "sk-..." + DECLARED[-4:]
    assert http.get("/team/info", params={"team_id": "declared-team"}).json()[
        "team_info"]["rpm_limit"] == 60
    with httpx.Client(base_url=gw.url) as anyone:
        assert anyone.get("/key/list", headers=as_key(DECLARED)).status_code == 403


def test_without_a_master_key_nobody_manages() -> None:
    gateway = start_gateway({"model_list": MODELS}, clean_env())
    try:
        with gateway.client() as client:
            answer = client.post("/key/generate", json={})
            assert answer.status_code == 403 and "master key" in str(error_of(answer)["message"])
    finally:
        gateway.stop()
