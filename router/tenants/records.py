"""Key and team records, the caller's identity (`Principal`), and the value formats they share.

A key is stored only as the SHA-256 of its text (`key_hash`) plus its last four characters for
display: no record, log line or Redis value holds a key itself.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "ANONYMOUS",
    "MASTER",
    "KeyRecord",
    "Limits",
    "Principal",
    "TeamRecord",
    "duration_seconds",
    "hash_key",
    "new_key",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def hash_key(key: str) -> str:
    """The stored identity of a key: hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh virtual key: `sk-` and 43 URL-safe random characters (256 bits)."""
    return "sk-" + secrets.token_urlsafe(32)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w|mo|y)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400,
         "y": 365 * 86400}


def duration_seconds(text: str) -> float:
    """`30s`, `10m`, `24h`, `30d`, `1mo` (30 days), `1w`, `1y` → seconds; ValueError otherwise."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 24h, 30d, 1mo)")
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class Limits:
    """What a key or a team may do. None means no limit (or: not set, for priorities)."""

    models: tuple[str, ...] = ()
    """Model group names, aliases or `model_info.access_groups` names; empty = every model."""
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    model_rpm_limit: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    model_tpm_limit: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    max_budget: float | None = None
    """USD per budget period (or in all, without `budget_duration`)."""
    soft_budget: float | None = None
    """USD per period past which one alert is sent."""
    budget_duration: str | None = None
    """How often spend resets: `30s`, `10m`, `24h`, `30d`, `1mo`."""
    default_priority: int | None = None
    """The priority of requests that do not set one."""
    priority_floor: int | None = None
    """The most important (smallest) priority this caller may have; smaller values are raised
    to it."""
    fair_share_weight: float = 1.0


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_hash: str
    """hex SHA-256 of the key."""
    key_last4: str
    """The key's last four characters, for display (`sk-...abcd`)."""
    key_alias: str | None = None
    team_id: str | None = None
    limits: Limits = field(default_factory=Limits)
    expires: float | None = None
    """Unix time after which the key is refused; None = never."""
    created_at: float = 0.0
    blocked: bool = False
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def display(self) -> str:
        return f"sk-...{self.key_last4}"


@dataclass(frozen=True, slots=True)
class TeamRecord:
    team_id: str
    team_alias: str | None = None
    limits: Limits = field(default_factory=Limits)
    created_at: float = 0.0
    blocked: bool = False
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the master key, a virtual key (and its team), or nobody in particular
    (a gateway without a master key serves everyone as `anonymous`)."""

    kind: str
    """"master", "key" or "anonymous"."""
    key: KeyRecord | None = None
    team: TeamRecord | None = None
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """What the request path works out from these records once (router/tenants/gate.py), kept
    here: a key's principal is made once per version of its records (Tenants.check)."""

    @property
    def unrestricted(self) -> bool:
        """No key limits, every model: the master key, or a gateway without one."""
        return self.key is None

    @property
    def can_manage(self) -> bool:
        """May call the key and team management API (the master key only)."""
        return self.kind == "master"


MASTER = Principal("master")
ANONYMOUS = Principal("anonymous")
