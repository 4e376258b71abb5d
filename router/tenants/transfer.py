"""Backup and restore of tenant records: JSON lines, one team or key per line, teams first.

    {"type": "team", "team_id": "research", ..., "spend": 1.25}
    {"type": "key", "token": "<sha256>", "key_last4": "abcd", ..., "spend": 0.5}

Keys appear only as their hashes (the file is as safe to keep as the Redis it came from). An
import writes each record whatever the store held under that key or team id, and its spend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import orjson

from router.tenants import codec
from router.tenants.store import TenantConflict, TenantStore

__all__ = ["Imported", "export_lines", "import_lines"]

_PAGE = 100


async def export_lines(store: TenantStore) -> AsyncIterator[str]:
    page = 1
    while (teams := await store.list_teams(page=page, size=_PAGE)).items:
        for team in teams.items:
            spend = await store.spend("team", team.team_id)
            yield _line({"type": "team", **codec.team_dict(team), "spend": spend.amount})
        page += 1
    page = 1
    while (keys := await store.list_keys(page=page, size=_PAGE)).items:
        for key in keys.items:
            spend = await store.spend("key", key.key_hash)
            yield _line({"type": "key", **codec.key_dict(key), "spend": spend.amount})
        page += 1


def _line(data: dict[str, object]) -> str:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


@dataclass
class Imported:
    teams: int = 0
    keys: int = 0
    problems: list[str] = field(default_factory=list)
    """One line per record not imported: `line 7: ...`."""


async def import_lines(store: TenantStore, lines: Iterable[str]) -> Imported:
    done = Imported()
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            data = orjson.loads(text)
            if not isinstance(data, dict) or data.get("type") not in ("team", "key"):
                raise ValueError('each line must be an object with "type": "team" or "key"')
            spend = float(data.get("spend") or 0.0)
            if data["type"] == "team":
                team = await store.put_team(codec.team_from(data))
                await store.restore_spend("team", team.team_id, spend)
                done.teams += 1
            else:
                key = codec.key_from(data)
                if len(key.key_hash) != 64:
                    raise ValueError("`token` must be a key's SHA-256 (64 hex digits)")
                await store.put_key(key)
                await store.restore_spend("key", key.key_hash, spend)
                done.keys += 1
        except (ValueError, KeyError, TypeError, TenantConflict) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            done.problems.append(f"line {number}: {what}")
    return done
