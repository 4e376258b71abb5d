"""`Tenants`: the tenant store written once over the primitives of a `RecordBackend`.

Reads on the request path go through the per-instance caches; every change ends with a notice
that makes every instance forget what it cached about that key or team.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from router.pricing import NANO
from router.state.base import TenantEntity
from router.state.keys import TenantRecordKeys as K
from router.tenants import codec
from router.tenants.aliases import AliasClaims
from router.tenants.backends import ANY, RecordBackend
from router.tenants.cache import RecordCache
from router.tenants.gate import entities_of
from router.tenants.records import KeyRecord, Principal, TeamRecord, duration_seconds, hash_key
from router.tenants.store import KeyCheck, Page, Spend, TenantConflict

if TYPE_CHECKING:
    from router.state.base import StateBackend

log = logging.getLogger("laneway.tenants")

__all__ = ["Tenants"]

_NOTICE = "tenant:"
_RETRIES = 8  # compare-and-set attempts before an update gives up on a record in flux


class Tenants:
    """The store over one `RecordBackend`; `declared` records (the config's `tenants:`) are
    written on first use, replacing stored records of the same key or team id."""

    def __init__(self, backend: RecordBackend, *, name: str, cache_ttl: float = 5.0,
                 cache_size: int = 10_000,
                 declared: tuple[Sequence[TeamRecord], Sequence[KeyRecord]] = ((), ()),
                 state: StateBackend | None = None) -> None:
        self.backend = backend
        self.state = state
        """Where admission keeps the spend counters (router/state, tenant.lua)."""
        self.name = name
        self.keys: RecordCache[KeyRecord] = RecordCache(cache_ttl, cache_size)
        self.teams: RecordCache[TeamRecord] = RecordCache(cache_ttl, cache_size)
        self._passes: dict[str, KeyCheck] = {}
        self._aliases = AliasClaims(backend, self._stored_key)
        self._declared = declared
        self._loaded = not (declared[0] or declared[1])
        self._loading: asyncio.Lock | None = None

    # -- the request path --------------------------------------------------------------------
    async def authenticate(self, presented_key: str) -> KeyRecord | None:
        """The key's record when it may be used now (known, not blocked or expired, its team
        present and not blocked), else None."""
        return (await self.check(presented_key)).key

    async def check(self, presented_key: str) -> KeyCheck:
        record = await self._cached_key(hash_key(presented_key))
        if record is None:
            return KeyCheck(None, problem="unknown")
        if record.blocked:
            return KeyCheck(None, problem="blocked")
        if record.expires is not None and record.expires <= time.time():
            return KeyCheck(None, problem="expired")
        team = None
        if record.team_id is not None:
            team = await self.cached_team(record.team_id)
            if team is None:
                return KeyCheck(None, problem="team missing")
            if team.blocked:
                return KeyCheck(None, problem="team blocked")
        return self._passed(record, team)

    def _passed(self, record: KeyRecord, team: TeamRecord | None) -> KeyCheck:
        """One check (and principal) per version of a key's records: the caches hand out one
        object per record while they keep it, so identity names the version, and what the
        request path derives from a principal is worked out once per version."""
        hit = self._passes.get(record.key_hash)
        if hit is not None and hit.key is record and hit.team is team:
            return hit
        if len(self._passes) >= self.keys.max_entries:
            self._passes.clear()
        checked = self._passes[record.key_hash] = KeyCheck(
            record, team, principal=Principal("key", record, team))
        return checked

    async def _cached_key(self, key_hash: str) -> KeyRecord | None:
        hit, record = self.keys.get(key_hash)
        if hit:
            return record
        await self._ready()
        generation = self.keys.generation
        record = await self._stored_key(key_hash)
        self.keys.put(key_hash, record, generation)
        return record

    async def cached_team(self, team_id: str) -> TeamRecord | None:
        hit, record = self.teams.get(team_id)
        if hit:
            return record
        await self._ready()
        generation = self.teams.generation
        record = await self._stored_team(team_id)
        self.teams.put(team_id, record, generation)
        return record

    # -- notices -----------------------------------------------------------------------------
    def _on_notice(self, text: str) -> None:
        if not text.startswith(_NOTICE):
            return
        kind, _, ident = text[len(_NOTICE):].partition(":")
        if kind == "k":
            self.keys.forget(ident)
        elif kind == "t":
            self.teams.forget(ident)

    async def _changed(self, kind: str, ident: str) -> None:
        (self.keys if kind == "k" else self.teams).forget(ident)
        await self.backend.notify(f"{_NOTICE}{kind}:{ident}")

    async def _ready(self) -> None:
        self.backend.listen(self._on_notice)
        if self._loaded:
            return
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._loaded:
                return
            teams, keys = self._declared
            for team in teams:
                await self._write_declared(self.put_team, team)
            for key in keys:
                await self._write_declared(self.put_key, key)
            self._loaded = True
            log.info("tenants: %d team(s) and %d key(s) from the config", len(teams), len(keys))

    @staticmethod
    async def _write_declared(put: Callable[..., object], record: object) -> None:
        try:
            await put(record, declared=True)  # type: ignore[misc]
        except TenantConflict as exc:
            log.warning("tenants: a record from the config was not stored: %s", exc)

    # -- keys --------------------------------------------------------------------------------
    async def _stored_key(self, key_hash: str) -> KeyRecord | None:
        raw = await self.backend.get(K.key(key_hash))
        return None if raw is None else codec.decode_key(raw)

    async def get_key(self, key_hash: str) -> KeyRecord | None:
        await self._ready()
        return await self._stored_key(key_hash)

    async def get_key_by_alias(self, alias: str) -> KeyRecord | None:
        await self._ready()
        return await self._aliases.holder(alias)

    async def create_key(self, record: KeyRecord) -> KeyRecord:
        await self._ready()
        record = _created(record)
        if record.key_alias is not None:
            await self._aliases.claim(record.key_alias, record.key_hash)
        if not await self.backend.cas(K.key(record.key_hash), None,
                                      codec.encode(codec.key_dict(record))):
            if record.key_alias is not None:
                await self._aliases.release(record.key_alias, record.key_hash)
            raise TenantConflict("key", "This key already exists.")
        await self._index_key(record, None)
        await self._changed("k", record.key_hash)  # a cached "no such key" ends now
        return record

    async def put_key(self, record: KeyRecord, *, declared: bool = False) -> KeyRecord:
        """Write `record` whatever was stored under its hash (config, import)."""
        if not declared:
            await self._ready()
        name = K.key(record.key_hash)
        old_raw = await self.backend.get(name)
        old = None if old_raw is None else codec.decode_key(old_raw)
        if old is not None:
            record = dataclasses.replace(record, created_at=old.created_at)
        record = _created(record)
        if record.key_alias is not None:
            await self._aliases.claim(record.key_alias, record.key_hash)
        await self.backend.cas(name, ANY, codec.encode(codec.key_dict(record)))
        await self._after_key_change(old, record)
        return record

    async def update_key(self, key_hash: str,
                         change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord | None:
        """Apply `change` to the stored record atomically (retried when another writer got
        there first). None when there is no such key."""
        await self._ready()
        name = K.key(key_hash)
        for _ in range(_RETRIES):
            raw = await self.backend.get(name)
            if raw is None:
                return None
            old = codec.decode_key(raw)
            new = dataclasses.replace(change(old), key_hash=old.key_hash,
                                      key_last4=old.key_last4, created_at=old.created_at)
            claimed = new.key_alias is not None and new.key_alias != old.key_alias
            if claimed:
                await self._aliases.claim(new.key_alias or "", key_hash)
            if await self.backend.cas(name, raw, codec.encode(codec.key_dict(new))):
                await self._after_key_change(old, new)
                return new
            if claimed:
                await self._aliases.release(new.key_alias or "", key_hash)
        raise TenantConflict("key", "The key kept changing while it was updated; try again.")

    async def replace_key(self, key_hash: str, new_hash: str,
                          new_last4: str) -> KeyRecord | None:
        """Regenerate: the record moves to a new key (alias, team and limits kept); the old
        key stops working. None when there is no such key."""
        await self._ready()
        old = await self._stored_key(key_hash)
        if old is None:
            return None
        new = dataclasses.replace(old, key_hash=new_hash, key_last4=new_last4,
                                  created_at=time.time())
        if not await self.backend.cas(K.key(new_hash), None,
                                      codec.encode(codec.key_dict(new))):
            raise TenantConflict("new_key", "This key already exists.")
        if old.key_alias is not None:
            await self._aliases.move(old.key_alias, key_hash, new_hash)
        await self._index_key(new, None)
        await self._drop_key(old)
        await self._changed("k", new_hash)
        return new

    async def delete_key(self, key_hash: str) -> bool:
        await self._ready()
        name = K.key(key_hash)
        raw = await self.backend.get(name)
        if raw is None or not await self.backend.cas(name, raw, None):
            return False
        await self._drop_key(codec.decode_key(raw), deleted=True)
        return True

    async def _drop_key(self, old: KeyRecord, *, deleted: bool = False) -> None:
        if not deleted:
            await self.backend.cas(K.key(old.key_hash), ANY, None)
        if old.key_alias is not None:
            await self._aliases.release(old.key_alias, old.key_hash)
        await self.backend.index_remove(K.keys_index, old.key_hash)
        if old.team_id is not None:
            await self.backend.index_remove(K.team_keys(old.team_id), old.key_hash)
        await self._changed("k", old.key_hash)

    async def _after_key_change(self, old: KeyRecord | None, new: KeyRecord) -> None:
        if old is not None and old.key_alias is not None and old.key_alias != new.key_alias:
            await self._aliases.release(old.key_alias, new.key_hash)
        await self._index_key(new, old)
        await self._changed("k", new.key_hash)

    async def _index_key(self, new: KeyRecord, old: KeyRecord | None) -> None:
        await self.backend.index_add(K.keys_index, new.key_hash, new.created_at)
        if old is not None and old.team_id is not None and old.team_id != new.team_id:
            await self.backend.index_remove(K.team_keys(old.team_id), new.key_hash)
        if new.team_id is not None:
            await self.backend.index_add(K.team_keys(new.team_id), new.key_hash, new.created_at)

    async def list_keys(self, *, team_id: str | None = None, page: int = 1,
                        size: int = 100) -> Page[KeyRecord]:
        await self._ready()
        index = K.keys_index if team_id is None else K.team_keys(team_id)
        hashes = await self.backend.index_page(index, (max(page, 1) - 1) * size, size)
        records = await asyncio.gather(*(self._stored_key(h) for h in hashes))
        found = [r for r in records if r is not None]
        return Page(found, await self.backend.index_count(index))

    # -- teams -------------------------------------------------------------------------------
    async def _stored_team(self, team_id: str) -> TeamRecord | None:
        raw = await self.backend.get(K.team(team_id))
        return None if raw is None else codec.decode_team(raw)

    async def get_team(self, team_id: str) -> TeamRecord | None:
        await self._ready()
        return await self._stored_team(team_id)

    async def create_team(self, record: TeamRecord) -> TeamRecord:
        await self._ready()
        record = _created(record)
        if not await self.backend.cas(K.team(record.team_id), None,
                                      codec.encode(codec.team_dict(record))):
            raise TenantConflict("team_id", f"Team '{record.team_id}' already exists.")
        await self.backend.index_add(K.teams_index, record.team_id, record.created_at)
        await self._changed("t", record.team_id)
        return record

    async def put_team(self, record: TeamRecord, *, declared: bool = False) -> TeamRecord:
        if not declared:
            await self._ready()
        old = await self._stored_team(record.team_id)
        if old is not None:
            record = dataclasses.replace(record, created_at=old.created_at)
        record = _created(record)
        await self.backend.cas(K.team(record.team_id), ANY, codec.encode(codec.team_dict(record)))
        await self.backend.index_add(K.teams_index, record.team_id, record.created_at)
        await self._changed("t", record.team_id)
        return record

    async def update_team(self, team_id: str,
                          change: Callable[[TeamRecord], TeamRecord]) -> TeamRecord | None:
        await self._ready()
        name = K.team(team_id)
        for _ in range(_RETRIES):
            raw = await self.backend.get(name)
            if raw is None:
                return None
            old = codec.decode_team(raw)
            new = dataclasses.replace(change(old), team_id=old.team_id,
                                      created_at=old.created_at)
            if await self.backend.cas(name, raw, codec.encode(codec.team_dict(new))):
                await self._changed("t", team_id)
                return new
        raise TenantConflict("team_id", "The team kept changing while it was updated; try again.")

    async def delete_team(self, team_id: str) -> bool:
        """Delete a team and every key of it (as LiteLLM does)."""
        await self._ready()
        name = K.team(team_id)
        raw = await self.backend.get(name)
        if raw is None or not await self.backend.cas(name, raw, None):
            return False
        await self.backend.index_remove(K.teams_index, team_id)
        await self._changed("t", team_id)
        while hashes := await self.backend.index_page(K.team_keys(team_id), 0, 100):
            for key_hash in hashes:
                if not await self.delete_key(key_hash):  # gone already: only the index left
                    await self.backend.index_remove(K.team_keys(team_id), key_hash)
        return True

    async def list_teams(self, *, page: int = 1, size: int = 100) -> Page[TeamRecord]:
        await self._ready()
        ids = await self.backend.index_page(K.teams_index, (max(page, 1) - 1) * size, size)
        records = await asyncio.gather(*(self._stored_team(t) for t in ids))
        return Page([r for r in records if r is not None],
                    await self.backend.index_count(K.teams_index))

    # -- spend -------------------------------------------------------------------------------
    async def spend(self, kind: str, ident: str) -> Spend:
        """What a key ("key", its hash) or a team ("team", its id) spent this budget period."""
        found = await self._counter(kind, ident)
        if found is None or self.state is None:
            return Spend()
        tag, entity, period = found
        usage = await self.state.tenant_usage(tag, entity)
        return Spend(usage.spent / NANO,
                     usage.period_start + period if period else None)

    async def restore_spend(self, kind: str, ident: str, amount: float) -> None:
        """Set the spend of a key or team (an import restoring a backup)."""
        found = await self._counter(kind, ident)
        if found is not None and self.state is not None:
            tag, entity, _ = found
            await self.state.tenant_set_spend(tag, entity, round(amount * NANO))

    async def _counter(self, kind: str, ident: str) -> tuple[str, TenantEntity, float] | None:
        """Where admission counts this key's or team's spend, and its budget period (s)."""
        if kind == "key":
            key = await self.get_key(ident)
            if key is None:
                return None
            team = await self.get_team(key.team_id) if key.team_id else None
            principal = Principal("key", key, team)
            tag, entities = entities_of(principal, "")
            limits = key.limits
            entity = entities[0]
        else:
            team = await self.get_team(ident)
            if team is None:
                return None
            tag, entities = entities_of(Principal("key", _ANY_KEY, team), "")
            limits, entity = team.limits, entities[1]
        period = duration_seconds(limits.budget_duration) if limits.budget_duration else 0.0
        return tag, entity, period


_ANY_KEY = KeyRecord(key_hash="-", key_last4="----")
"""Stands in for a team's key where only the team's counters are wanted."""

R = TypeVar("R", KeyRecord, TeamRecord)


def _created(record: R) -> R:
    return record if record.created_at else dataclasses.replace(record, created_at=time.time())

