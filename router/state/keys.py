"""Every Redis key name laneway uses, built in one place.

All keys of one model group share the hash tag `{<group>}` so that each script touches a single
slot and runs on Redis Cluster. The `v1` in the prefix versions the layout: a deploy that changes
it bumps the version, so two releases never read each other's data.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

LAYOUT = "v1"
PREFIX = f"lw:{LAYOUT}"
WAKE_CHANNEL = f"{PREFIX}:wake"
FLEET_SEEN = f"{PREFIX}:fleet:{{seen}}"
"""ZSET instance → when it was last seen (ms): the dashboard's fleet (router/snapshot)."""

NOTICE_PREFIX = "~"
"""Messages on WAKE_CHANNEL that start with this are notices to every instance (a tenant record
changed), not wake-ups: a request id is a hex uuid and never starts with it."""

CACHE_PREFIX = "^"
"""Messages on WAKE_CHANNEL that start with this announce that a response cache entry was
written or its single-flight lock let go (router/cache): `^` and the entry's digest."""

__all__ = ["CACHE_PREFIX", "FLEET_SEEN", "NOTICE_PREFIX", "PREFIX", "WAKE_CHANNEL", "CacheKeys",
           "DeploymentKeys", "GroupKeys", "TenantKeys", "TenantRecordKeys", "stored_response"]


def _tag(group: str) -> str:
    # Braces inside a name would end the hash tag early; such names use a digest instead.
    if "{" in group or "}" in group:
        return "h:" + hashlib.sha1(group.encode()).hexdigest()[:16]
    return group


@dataclass(frozen=True, slots=True)
class DeploymentKeys:
    rpm: str
    tpm: str
    tok: str
    run: str
    fails: str


@dataclass(frozen=True, slots=True)
class GroupKeys:
    base: str

    @classmethod
    def of(cls, group: str) -> GroupKeys:
        return cls(f"{PREFIX}:{{{_tag(group)}}}")

    @property
    def line(self) -> str:
        return f"{self.base}:line"

    @property
    def wlease(self) -> str:
        return f"{self.base}:wlease"

    @property
    def wmeta(self) -> str:
        return f"{self.base}:wmeta"

    @property
    def seq(self) -> str:
        return f"{self.base}:seq"

    @property
    def health(self) -> str:
        return f"{self.base}:health"

    @property
    def aging(self) -> str:
        return f"{self.base}:aging"

    def tier(self, name: str) -> str:
        """A reservation tier's index of the line (lua/tiers.lua)."""
        return f"{self.base}:tier:{hashlib.sha1(name.encode()).hexdigest()[:12]}"

    def deployment(self, deployment_id: str) -> DeploymentKeys:
        d = f"{self.base}:d:{deployment_id}"
        return DeploymentKeys(f"{d}:rpm", f"{d}:tpm", f"{d}:tok", f"{d}:run", f"{d}:fails")


@dataclass(frozen=True, slots=True)
class TenantKeys:
    """A tenant's counters: one hash tag per team (its keys' counters live with it, so one
    script checks a key and its team together), or per key without a team."""

    base: str

    @classmethod
    def of(cls, tag: str) -> TenantKeys:
        return cls(f"{PREFIX}:{{t:{_tag(tag)}}}")

    def entity(self, name: str, group: str) -> tuple[str, ...]:
        """The 6 keys tenant.lua takes for one key or team, with `group`'s own window."""
        return _entity_keys(self.base, name, group)


@functools.lru_cache(maxsize=4096)  # the same few keys, teams and groups, on every request
def _entity_keys(base: str, name: str, group: str) -> tuple[str, ...]:
    e = f"{base}:{name}"
    m = f"{e}:m:{hashlib.sha1(group.encode()).hexdigest()[:16]}"
    return (f"{e}:win", f"{e}:tok", f"{e}:run", f"{e}:spend", f"{m}:win", f"{m}:tok")


class TenantRecordKeys:
    """Keys and teams: each record and each alias under its own hash tag (one slot per
    command), plus index sorted sets (member → creation time) for listing. Records are
    permanent (no TTL): they are data, not state that rebuilds itself. A key's name holds the
    SHA-256 of the key, never the key."""

    keys_index = f"{PREFIX}:tenants:{{keys}}"
    """ZSET key hash → creation time: every key."""
    teams_index = f"{PREFIX}:tenants:{{teams}}"
    """ZSET team id → creation time: every team."""

    @staticmethod
    def key(key_hash: str) -> str:
        """STRING: the key's record (JSON)."""
        return f"{PREFIX}:key:{{{key_hash}}}"

    @staticmethod
    def key_alias(alias: str) -> str:
        """STRING: the hash of the key that holds this alias."""
        return f"{PREFIX}:keyalias:{{{_tag(alias)}}}"

    @staticmethod
    def team(team_id: str) -> str:
        """STRING: the team's record (JSON)."""
        return f"{PREFIX}:team:{{{_tag(team_id)}}}"

    @staticmethod
    def team_keys(team_id: str) -> str:
        """ZSET key hash → creation time: the team's keys."""
        return f"{PREFIX}:teamkeys:{{{_tag(team_id)}}}"


@dataclass(frozen=True, slots=True)
class CacheKeys:
    """One response cache entry and its single-flight lock, under the entry's own hash tag
    (one slot per entry, so entries spread over a Cluster). `digest` is the hex SHA-256 of the
    normalized request (router/cache/keys.py): the name holds no request text."""

    entry: str
    """STRING: the stored response (JSON), with the entry's TTL."""
    lock: str
    """STRING: the leader's token, with the lease as its TTL."""

    @classmethod
    def of(cls, digest: str) -> CacheKeys:
        base = f"{PREFIX}:cache:{{c:{digest}}}"
        return cls(base, f"{base}:lock")


def stored_response(response_id: str, owner: str) -> str:
    """A stored Responses conversation: its own hash tag (one key, any slot), named by the
    response id and the owner (a key's hash, or "master"/"anonymous"), so another key's
    lookup of the same id finds nothing."""
    return f"{PREFIX}:{{r:{_tag(response_id)}}}:{owner}"
