"""Unique key aliases across slots: an alias is claimed (its own value, naming the key's hash)
before a record takes it, and released after the record lets it go.

The claim and the record live in different slots, so they cannot change in one script. A claim
whose key no longer holds the alias (the operation that made it died half-way: the record was
never written, or a rename did not finish) is stale once it is older than `_STALE` seconds, and
then another key may take it over. Until then a concurrent creator of the same alias loses,
which is what makes two simultaneous `create` calls with one alias end with one winner.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from router.state.keys import TenantRecordKeys as K
from router.tenants.backends import RecordBackend
from router.tenants.records import KeyRecord
from router.tenants.store import TenantConflict

__all__ = ["AliasClaims"]

_STALE = 60.0


def _claim(key_hash: str) -> bytes:
    return f"{key_hash}|{time.time():.3f}".encode()


def _holder(claim: bytes) -> tuple[str, float]:
    key_hash, _, at = claim.decode().partition("|")
    try:
        return key_hash, float(at)
    except ValueError:
        return key_hash, 0.0


class AliasClaims:
    def __init__(self, backend: RecordBackend,
                 read_key: Callable[[str], Awaitable[KeyRecord | None]]) -> None:
        self._backend = backend
        self._read_key = read_key

    async def holder(self, alias: str) -> KeyRecord | None:
        claim = await self._backend.get(K.key_alias(alias))
        if claim is None:
            return None
        record = await self._read_key(_holder(claim)[0])
        return record if record is not None and record.key_alias == alias else None

    async def claim(self, alias: str, key_hash: str) -> None:
        """Take `alias` for `key_hash`; TenantConflict when another key holds it."""
        name = K.key_alias(alias)
        for _ in range(4):
            claim = await self._backend.get(name)
            if claim is None:
                if await self._backend.cas(name, None, _claim(key_hash)):
                    return
                continue
            owner, at = _holder(claim)
            if owner == key_hash:
                return
            record = await self._read_key(owner)
            held = record is not None and record.key_alias == alias
            if held or time.time() - at < _STALE:
                break
            if await self._backend.cas(name, claim, _claim(key_hash)):
                return
        raise TenantConflict("key_alias", f"key_alias '{alias}' is already in use.")

    async def release(self, alias: str, key_hash: str) -> None:
        """Let `alias` go if `key_hash` holds it."""
        name = K.key_alias(alias)
        claim = await self._backend.get(name)
        if claim is not None and _holder(claim)[0] == key_hash:
            await self._backend.cas(name, claim, None)

    async def move(self, alias: str, old_hash: str, new_hash: str) -> None:
        """Hand `alias` from one key to another (a regenerated key)."""
        name = K.key_alias(alias)
        claim = await self._backend.get(name)
        if claim is None or _holder(claim)[0] == old_hash:
            await self._backend.cas(name, claim, _claim(new_hash))
