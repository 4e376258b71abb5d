"""Records as stored (JSON objects, the same in Redis, in process and in an export file).

A key's record holds its hash and last four characters; nothing here ever sees the key itself.
Unknown fields of a stored object are ignored, so a newer laneway's records still load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import orjson

from router.tenants.records import KeyRecord, Limits, TeamRecord

__all__ = ["decode_key", "decode_team", "encode", "key_dict", "key_from", "limits_dict",
           "limits_from", "team_dict", "team_from"]

_LIMIT_FIELDS = tuple(f.name for f in dataclasses.fields(Limits))
_MAPS = {"model_rpm_limit", "model_tpm_limit"}


def limits_dict(limits: Limits) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _LIMIT_FIELDS:
        value = getattr(limits, name)
        if name == "models":
            value = list(value)
        elif name in _MAPS:
            value = dict(value)
        out[name] = value
    return out


def limits_from(data: Mapping[str, Any]) -> Limits:
    values: dict[str, Any] = {}
    for name in _LIMIT_FIELDS:
        if data.get(name) is None:
            continue
        value = data[name]
        if name == "models":
            value = tuple(value)
        elif name in _MAPS:
            value = MappingProxyType(dict(value))
        values[name] = value
    return Limits(**values)


def key_dict(record: KeyRecord) -> dict[str, Any]:
    return {
        "token": record.key_hash,
        "key_last4": record.key_last4,
        "key_alias": record.key_alias,
        "team_id": record.team_id,
        **limits_dict(record.limits),
        "expires": record.expires,
        "created_at": record.created_at,
        "blocked": record.blocked,
        "metadata": dict(record.metadata),
    }


def key_from(data: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_hash=str(data["token"]),
        key_last4=str(data.get("key_last4") or ""),
        key_alias=data.get("key_alias"),
        team_id=data.get("team_id"),
        limits=limits_from(data),
        expires=data.get("expires"),
        created_at=float(data.get("created_at") or 0.0),
        blocked=bool(data.get("blocked")),
        metadata=MappingProxyType(dict(data.get("metadata") or {})),
    )


def team_dict(record: TeamRecord) -> dict[str, Any]:
    return {
        "team_id": record.team_id,
        "team_alias": record.team_alias,
        **limits_dict(record.limits),
        "created_at": record.created_at,
        "blocked": record.blocked,
        "metadata": dict(record.metadata),
    }


def team_from(data: Mapping[str, Any]) -> TeamRecord:
    return TeamRecord(
        team_id=str(data["team_id"]),
        team_alias=data.get("team_alias"),
        limits=limits_from(data),
        created_at=float(data.get("created_at") or 0.0),
        blocked=bool(data.get("blocked")),
        metadata=MappingProxyType(dict(data.get("metadata") or {})),
    )


def encode(data: Mapping[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def decode_key(raw: bytes | str) -> KeyRecord:
    return key_from(orjson.loads(raw))


def decode_team(raw: bytes | str) -> TeamRecord:
    return team_from(orjson.loads(raw))
