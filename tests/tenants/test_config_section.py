"""The `tenants:` config section: validated by YAML path, keys hashed as they are read."""

from __future__ import annotations

import hashlib

import pytest

from router.config import parse_config
from router.errors import ConfigError
from router.tenants.fields import declared_records

KEY = "sk-config-declared-0123456789"


def parse(tenants: object, **env: str):  # type: ignore[no-untyped-def]
    return parse_config({"model_list": [], "tenants": tenants}, environ=env)


def test_a_declared_key_is_kept_only_as_its_hash() -> None:
    config = parse({"teams": [{"team_id": "t1", "tpm_limit": "5000", "priority_floor": "2"}],
                    "keys": [{"key": "os.environ/MY_KEY", "key_alias": "svc", "team_id": "t1",
                              "model_rpm_limit": {"gpt-4o": 10}, "budget_duration": "1mo"}]},
                   MY_KEY=KEY)
    assert KEY not in repr(config) and KEY not in str(config.model_dump())
    teams, keys = declared_records(config.tenants)
    assert keys[0].key_hash == hashlib.sha256(KEY.encode()).hexdigest()
    assert keys[0].key_last4 == KEY[-4:] and keys[0].team_id == "t1"
    assert dict(keys[0].limits.model_rpm_limit) == {"gpt-4o": 10}
    assert keys[0].limits.budget_duration == "1mo"
    assert teams[0].limits.tpm_limit == 5000 and teams[0].limits.priority_floor == 2
    assert config.tenants.cache_ttl == 5.0


def test_problems_are_named_by_path_without_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        parse({"keys": [{"key": "os.environ/MY_KEY", "rpm_limit": -2},
                        {"key": "short"}, {"key_alias": "no-key"}],
               "teams": [{"team_alias": "no id", "budget_duration": "weekly"}]},
              MY_KEY=KEY)
    text = str(exc.value)
    for line in ("tenants.keys[0].rpm_limit: must be an integer of 0 or more",
                 "tenants.keys[1].key: must start with `sk-`", "tenants.keys[2].key: is required",
                 "tenants.teams[0].team_id: is required",
                 "tenants.teams[0].budget_duration: must be a duration"):
        assert line in text, text
    assert KEY not in text


def test_repeated_keys_aliases_and_teams_are_refused() -> None:
    with pytest.raises(ConfigError) as exc:
        parse({"keys": [{"key": KEY, "key_alias": "a"}, {"key": KEY, "key_alias": "a"}],
               "teams": [{"team_id": "t"}, {"team_id": "t"}]})
    text = str(exc.value)
    assert "keys[1].key repeats" in text and "keys[1].key_alias repeats" in text
    assert "teams[1].team_id repeats" in text and KEY not in text


def test_an_unknown_field_is_a_warning_by_path() -> None:
    config = parse({"keys": [{"key": KEY, "colour": "blue"}]})
    assert any(w.startswith("tenants.keys[0].colour: unknown key") for w in config.warnings)
