"""The `tenants:` section (virtual keys and teams declared in the config), and the field types
the key and team management API validates its bodies with, so both accept the same values.

    tenants:
      teams:
        - team_id: research
          rpm_limit: 600
      keys:
        - key: os.environ/RESEARCH_KEY      # hashed as it is read; the text is never kept
          key_alias: research-batch
          team_id: research
          models: [gpt-4o]
"""

from __future__ import annotations

import re
from typing import Annotated, Any, NoReturn

from pydantic import Field, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from router.config.fields import (
    AnyMap,
    Flag,
    NonNegativeInt,
    NonNegativeNumber,
    PositiveNumber,
    Section,
    TextList,
)

__all__ = ["HashedKey", "KeyEntry", "TeamEntry", "TenantFields", "TenantsSection"]

PRIORITY_LIMIT = 2**20 - 1  # the same bound as a request's `priority` (router.router)
_KEY = re.compile(r"^sk-[\x21-\x7e]{13,}$")
_NAME_LIMIT = 256


def _fail(message: str) -> NoReturn:
    raise PydanticCustomError("laneway_config", message)


class HashedKey(str):
    """A key as laneway keeps it: its SHA-256 (the str value) and its last four characters."""

    last4: str

    def __new__(cls, key_hash: str, last4: str) -> HashedKey:
        made = super().__new__(cls, key_hash)
        made.last4 = last4
        return made

    def __repr__(self) -> str:
        return f"HashedKey(sha256:{self[:8]}…)"


def hashed_key(value: Any) -> HashedKey:
    """Check a key's form and hash it at once, so no model ever holds the key itself."""
    from router.tenants.records import hash_key

    if isinstance(value, HashedKey):
        return value
    if not isinstance(value, str) or not _KEY.match(value):
        _fail("must start with `sk-` and have at least 16 printable characters, no spaces")
    return HashedKey(hash_key(value), value[-4:])


def _name(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > _NAME_LIMIT:
        _fail(f"must be a non-empty string of at most {_NAME_LIMIT} characters")
    return value


def _duration(value: Any) -> str:
    from router.tenants.records import duration_seconds

    try:
        duration_seconds(value)
    except ValueError:
        _fail("must be a duration such as 30s, 10m, 24h, 30d or 1mo")
    return str(value).strip()


def _priority(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)  # an os.environ/ value
    if isinstance(value, int) and not isinstance(value, bool) and (
            -PRIORITY_LIMIT <= value <= PRIORITY_LIMIT):
        return value
    _fail(f"must be an integer between -{PRIORITY_LIMIT} and {PRIORITY_LIMIT}")


def _per_model(value: Any) -> dict[str, int]:
    if isinstance(value, dict) and all(
            isinstance(k, str) and k and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in value.items()):
        return dict(value)
    _fail("must be a mapping of model group names to integers of 0 or more")


Name = Annotated[str, PlainValidator(_name)]
Duration = Annotated[str, PlainValidator(_duration)]
Priority = Annotated[int, PlainValidator(_priority)]
PerModel = Annotated[dict[str, int], PlainValidator(_per_model)]
KeyText = Annotated[HashedKey, PlainValidator(hashed_key)]


class TenantFields(Section):
    """What keys and teams share: limits, budget, priority, access."""

    models: TextList | None = None
    rpm_limit: NonNegativeInt | None = None
    tpm_limit: NonNegativeInt | None = None
    max_parallel_requests: NonNegativeInt | None = None
    model_rpm_limit: PerModel | None = None
    model_tpm_limit: PerModel | None = None
    max_budget: NonNegativeNumber | None = None
    soft_budget: NonNegativeNumber | None = None
    budget_duration: Duration | None = None
    default_priority: Priority | None = None
    priority_floor: Priority | None = None
    fair_share_weight: PositiveNumber | None = None
    blocked: Flag | None = None
    metadata: AnyMap | None = None


class KeyFields(TenantFields):
    key_alias: Name | None = None
    team_id: Name | None = None


class KeyEntry(KeyFields):
    """A key declared in the config: `key` is required (usually `os.environ/NAME`)."""

    key: KeyText = Field(repr=False)


class TeamEntry(TenantFields):
    team_id: Name
    team_alias: Name | None = None


class TenantsSection(Section):
    keys: list[KeyEntry] = Field(default_factory=list)
    teams: list[TeamEntry] = Field(default_factory=list)
    cache_ttl: NonNegativeNumber = 5.0
    """Seconds each instance remembers a looked-up key or team (0: read the store on every
    request). Changes reach every instance at once regardless; this bounds a lost notice."""

    @model_validator(mode="after")
    def _unique(self) -> TenantsSection:
        problems = []
        for what, values in (
            ("key", [str(k.key) for k in self.keys]),
            ("key_alias", [k.key_alias for k in self.keys]),
            ("team_id", [t.team_id for t in self.teams]),
        ):
            seen: set[str] = set()
            listing = "teams" if what == "team_id" else "keys"
            for index, value in enumerate(values):
                if value is None:
                    continue
                if value in seen:
                    problems.append(f"{listing}[{index}].{what} repeats an earlier entry's")
                seen.add(value)
        if problems:
            _fail("; ".join(problems))
        return self
