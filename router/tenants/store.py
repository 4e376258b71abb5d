"""The tenant store: key and team records in the state backend, cached per instance.

`TenantStore` is what the gateway uses; `tenant_store_for(state)` builds the one that matches
the state backend (Redis for a fleet: all instances see one truth; in process otherwise). Both
are `Tenants` (stored.py) over a different `RecordBackend` (backends.py) and pass one contract
suite (tests/tenants/test_store_contract.py).

Every change is published as a notice that every instance applies to its cache at once, so a
blocked or deleted key stops working fleet-wide within the notice's delivery time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from router.tenants.records import KeyRecord, Principal, TeamRecord

if TYPE_CHECKING:
    from router.config import Config
    from router.state.base import StateBackend
    from router.tenants.stored import Tenants

__all__ = ["KeyCheck", "Page", "Spend", "TenantConflict", "TenantStore", "tenant_store_for"]

P = TypeVar("P")


class TenantConflict(ValueError):
    """A change that the stored records refuse (a taken alias, an existing key or team)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Page(Generic[P]):
    items: list[P]
    total: int


@dataclass(frozen=True, slots=True)
class Spend:
    amount: float = 0.0
    """USD spent in the current budget period."""
    reset_at: float | None = None
    """Unix time the period ends and spend returns to 0; None without `budget_duration`."""


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """The outcome of presenting a key: the record (and team) when it may be used, else why
    not: "unknown", "blocked", "expired", "team blocked", "team missing"."""

    key: KeyRecord | None
    team: TeamRecord | None = None
    problem: str | None = None
    principal: Principal | None = None
    """The caller, when the key may be used."""


class TenantStore(Protocol):
    async def authenticate(self, presented_key: str) -> KeyRecord | None: ...
    async def check(self, presented_key: str) -> KeyCheck: ...
    async def cached_team(self, team_id: str) -> TeamRecord | None: ...
    async def get_key(self, key_hash: str) -> KeyRecord | None: ...
    async def get_key_by_alias(self, alias: str) -> KeyRecord | None: ...
    async def create_key(self, record: KeyRecord) -> KeyRecord: ...
    async def put_key(self, record: KeyRecord) -> KeyRecord: ...
    async def update_key(self, key_hash: str,
                         change: Callable[[KeyRecord], KeyRecord]) -> KeyRecord | None: ...
    async def replace_key(self, key_hash: str, new_hash: str,
                          new_last4: str) -> KeyRecord | None: ...
    async def delete_key(self, key_hash: str) -> bool: ...
    async def list_keys(self, *, team_id: str | None = None, page: int = 1,
                        size: int = 100) -> Page[KeyRecord]: ...
    async def get_team(self, team_id: str) -> TeamRecord | None: ...
    async def create_team(self, record: TeamRecord) -> TeamRecord: ...
    async def put_team(self, record: TeamRecord) -> TeamRecord: ...
    async def update_team(self, team_id: str,
                          change: Callable[[TeamRecord], TeamRecord]) -> TeamRecord | None: ...
    async def delete_team(self, team_id: str) -> bool: ...
    async def list_teams(self, *, page: int = 1, size: int = 100) -> Page[TeamRecord]: ...
    async def spend(self, kind: str, ident: str) -> Spend: ...
    async def restore_spend(self, kind: str, ident: str, amount: float) -> None: ...


def tenant_store_for(state: StateBackend, config: Config | None = None, *,
                     cache_ttl: float | None = None) -> Tenants:
    """The store that shares `state`'s storage: Redis (through its connection) when the state
    is Redis, including fail-open (records then stay in Redis: a key cannot be checked while
    Redis is away), in process otherwise; with the config's `tenants:` records declared."""
    from router.state.redis_store import RedisState
    from router.tenants.backends import MemoryRecords, RedisRecords
    from router.tenants.stored import Tenants

    declared: tuple[Sequence[TeamRecord], Sequence[KeyRecord]] = ((), ())
    ttl = 5.0 if cache_ttl is None else cache_ttl
    if config is not None:
        from router.tenants.fields import declared_records

        declared = declared_records(config.tenants)
        ttl = config.tenants.cache_ttl if cache_ttl is None else cache_ttl
    redis = getattr(state, "primary", state)
    if isinstance(redis, RedisState):
        return Tenants(RedisRecords(redis), name="redis", cache_ttl=ttl, declared=declared,
                       state=state)
    return Tenants(MemoryRecords(), name="memory", cache_ttl=ttl, declared=declared,
                   state=state)
