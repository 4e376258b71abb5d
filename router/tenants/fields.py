"""From validated fields to records: the config's `tenants:` entries and the management API's
bodies, both checked by the models of router/config/tenants.py, so they accept the same values.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from router.config.fields import Section, Text
from router.config.paths import format_path
from router.config.tenants import (
    Duration,
    KeyEntry,
    KeyFields,
    KeyText,
    Name,
    TeamEntry,
    TenantFields,
    TenantsSection,
)
from router.errors import BadRequest
from router.tenants.records import KeyRecord, Limits, TeamRecord, duration_seconds

__all__ = ["GenerateKey", "NewTeam", "RegenerateKey", "UpdateKey", "UpdateTeam",
           "declared_records", "key_changes", "parse_fields", "team_changes"]

LIMIT_FIELDS = frozenset(f.name for f in dataclasses.fields(Limits))
_NO_LIMITS = Limits()


class GenerateKey(KeyFields):
    key: KeyText | None = None
    duration: Duration | None = None


class UpdateKey(KeyFields):
    key: Text
    duration: Duration | None = None


class RegenerateKey(UpdateKey):
    new_key: KeyText | None = None


class NewTeam(TenantFields):
    team_id: Name | None = None
    team_alias: Name | None = None


class UpdateTeam(TenantFields):
    team_id: Name
    team_alias: Name | None = None


def parse_fields(body: Mapping[str, Any], model: type[Section],
                 required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The body's fields, validated by `model`: unknown ones and bad values are 400s naming
    the field. A field sent as null is kept as None (an update resets it)."""
    for name in body:
        if name not in model.model_fields:
            raise BadRequest(f"Unknown field `{name}`.", param=str(name))
    for name in required:
        if body.get(name) is None:
            raise BadRequest(f"`{name}` is required.", param=name)
    try:
        parsed = model.model_validate({k: v for k, v in body.items() if v is not None})
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = format_path(tuple(p if isinstance(p, int) else str(p) for p in error["loc"]))
        raise BadRequest(f"`{where}` {error['msg']}.", param=where) from None
    return {name: None if body[name] is None else getattr(parsed, name) for name in body}


def _limits(base: Limits, given: Mapping[str, Any]) -> Limits:
    changes: dict[str, Any] = {}
    for name, value in given.items():
        if name not in LIMIT_FIELDS:
            continue
        if value is None:
            value = getattr(_NO_LIMITS, name)
        elif name == "models":
            value = tuple(value)
        elif name in ("model_rpm_limit", "model_tpm_limit"):
            value = MappingProxyType(dict(value))
        changes[name] = value
    return dataclasses.replace(base, **changes) if changes else base


def _expiry(given: Mapping[str, Any], current: float | None) -> float | None:
    if "duration" not in given:
        return current
    duration = given["duration"]
    return None if duration is None else time.time() + duration_seconds(duration)


def key_changes(record: KeyRecord, given: Mapping[str, Any]) -> KeyRecord:
    """`record` with the given (validated) fields applied; None resets a field."""
    changes: dict[str, Any] = {"limits": _limits(record.limits, given),
                               "expires": _expiry(given, record.expires)}
    for name in ("key_alias", "team_id"):
        if name in given:
            changes[name] = given[name]
    if "blocked" in given:
        changes["blocked"] = bool(given["blocked"])
    if "metadata" in given:
        changes["metadata"] = MappingProxyType(dict(given["metadata"] or {}))
    return dataclasses.replace(record, **changes)


def team_changes(record: TeamRecord, given: Mapping[str, Any]) -> TeamRecord:
    changes: dict[str, Any] = {"limits": _limits(record.limits, given)}
    if "team_alias" in given:
        changes["team_alias"] = given["team_alias"]
    if "blocked" in given:
        changes["blocked"] = bool(given["blocked"])
    if "metadata" in given:
        changes["metadata"] = MappingProxyType(dict(given["metadata"] or {}))
    return dataclasses.replace(record, **changes)


def _given(entry: Section) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in entry.model_fields_set}


def _declared_key(entry: KeyEntry) -> KeyRecord:
    return key_changes(KeyRecord(str(entry.key), entry.key.last4), _given(entry))


def _declared_team(entry: TeamEntry) -> TeamRecord:
    return team_changes(TeamRecord(entry.team_id), _given(entry))


def declared_records(section: TenantsSection) -> tuple[list[TeamRecord], list[KeyRecord]]:
    """The config's teams and keys as records (keys as hashes: the section holds no key)."""
    return ([_declared_team(t) for t in section.teams], [_declared_key(k) for k in section.keys])
