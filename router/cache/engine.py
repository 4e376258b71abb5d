"""`ResponseCache`: answer a request from the cache before admission, or call upstream once
(single-flight) and store the answer.

A hit takes no slot and no rate-limit or spend (cost 0), but it still passes the checks that
do not depend on capacity: model access (done by the router before this runs) and a spent
budget, which is read here only for keys and teams that have a `max_budget` (one read of
the spend counter per such entity; the master key and keys without budgets pay nothing).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson

from router.cache.keys import cache_digest, controls_of, scope_of
from router.cache.replay import assemble, finished, replay
from router.cache.singleflight import Lead, Waiters, acquire, finish
from router.cache.store import CacheStore, MemoryCacheStore, RedisCacheStore
from router.errors import BudgetExceeded, ServiceUnavailable
from router.pricing import NANO
from router.tenants.gate import ask_for

if TYPE_CHECKING:
    from router.config import Config
    from router.config.settings import CacheParams
    from router.dispatch import Call, Served
    from router.groups import Group
    from router.state.base import StateBackend

log = logging.getLogger("laneway.cache")

__all__ = ["ResponseCache", "cache_for"]

SUPPORTED_TYPES = ("redis", "local")
ALL_ENDPOINTS = frozenset({"chat", "text", "embed", "responses"})
Upstream = Callable[[], Awaitable["Served"]]


def _redis_of(state: StateBackend) -> Any:
    from router.state.redis_store import RedisState

    redis = getattr(state, "primary", state)  # fail-open: the cache uses the Redis side
    return redis if isinstance(redis, RedisState) else None


def _own_redis_url(p: CacheParams) -> str | None:
    if p.url:
        return p.url
    if not p.host:
        return None
    from urllib.parse import quote

    auth = f":{quote(p.password, safe='')}@" if p.password else ""
    return f"redis://{auth}{p.host}:{p.port or 6379}/0"


def cache_for(config: Config, state: StateBackend) -> ResponseCache | None:
    """The cache `config` asks for (None when `litellm_settings.cache` is off). Unsupported
    types are a warning naming them, and the request path then runs without a cache."""
    settings = config.litellm_settings
    if not settings.cache:
        return None
    p = settings.cache_params
    own = _own_redis_url(p)
    kind = p.type or ("redis" if own or _redis_of(state) is not None else "local")
    if kind not in SUPPORTED_TYPES:
        log.warning("litellm_settings.cache_params.type '%s' is not supported by laneway "
                    "(supported: %s): responses are not cached", kind,
                    ", ".join(SUPPORTED_TYPES))
        return None
    store: CacheStore
    if kind == "local":
        store = MemoryCacheStore(p.max_size_in_memory)
    else:
        if own is not None:
            from router.state.redis_store import RedisState

            store = RedisCacheStore(RedisState(own))
        elif _redis_of(state) is not None:
            store = RedisCacheStore(_redis_of(state))
        else:
            log.warning("litellm_settings.cache_params.type is 'redis' but neither the cache "
                        "nor the state backend has a Redis: using the in-process cache")
            store = MemoryCacheStore(p.max_size_in_memory)
    if p.supported_call_types is None:
        endpoints = ALL_ENDPOINTS
    else:
        from router.config.settings import CACHE_CALL_TYPES

        endpoints = frozenset(CACHE_CALL_TYPES[t] for t in p.supported_call_types)
    return ResponseCache(p, store, state, endpoints)


def _encode(kind: str, body: Any, deployment_id: str) -> bytes:
    return orjson.dumps({"kind": kind, "body": body, "dep": deployment_id, "at": time.time()})


class ResponseCache:
    def __init__(self, params: CacheParams, store: CacheStore, state: StateBackend,
                 endpoints: frozenset[str]) -> None:
        self.params, self.store, self.state, self.endpoints = params, store, state, endpoints
        self.namespace = params.namespace or ""
        self.waiters = Waiters()
        store.listen(self.waiters.wake)

    async def aclose(self) -> None:
        """Close a Redis connection of the cache's own (the state's is the router's)."""
        if isinstance(self.store, RedisCacheStore) and self.store.redis is not _redis_of(
                self.state):
            await self.store.redis.close()

    async def serve(self, group: Group, call: Call, upstream: Upstream) -> Served:
        """Answer `call` (whose model access was checked) from the cache, or by `upstream()`
        storing what it returns."""
        p, record = self.params, call.record
        controls = controls_of(call.body.pop("cache", None))  # never sent upstream
        wanted = controls.use_cache if controls.use_cache is not None else (
            p.mode == "default_on")
        if not wanted or call.endpoint not in self.endpoints or call.mock_response is not None:
            return await upstream()
        # A wildcard group (`openai/*`) serves many models: the name asked for is the model.
        served_by = f"{group.name}\n{record.model}" if "*" in group.name else group.name
        digest = cache_digest(call.endpoint, served_by, call.body,
                              scope_of(call.principal, p.scope),
                              controls.namespace or self.namespace)
        if digest is None:
            return await upstream()
        record.cache_key = digest
        token = uuid.uuid4().hex
        lead: Lead | None = None
        if not controls.no_cache:
            read_only = controls.no_store or controls.max_age is not None
            try:
                got = await acquire(
                    self.store, self.waiters, digest, token,
                    0.0 if read_only else p.lock_lease_seconds, call.deadline, call.abandoned,
                    joined=lambda: setattr(record, "cache_joined", True))
            except ServiceUnavailable:
                log.warning("the response cache is unreachable: calling upstream uncached")
                return await upstream()
            if got.value is not None:
                entry = orjson.loads(got.value)
                if controls.max_age is None or time.time() - entry["at"] <= controls.max_age:
                    return await self._hit(group, call, entry)
            if got.lead:
                lead = Lead(self.store, digest, token, p.lock_lease_seconds, call.deadline)
        ttl = controls.ttl or p.ttl
        try:
            served = await upstream()
        except BaseException:
            if lead is not None:
                await lead.finish(None, ttl)
            raise
        store = not controls.no_store
        if isinstance(served.response, dict):
            value = _encode("json", served.response, served.deployment.id) if store else None
            if value is not None and len(value) > p.max_entry_bytes:
                value = None
            if lead is not None:
                record.cache_stored = await lead.finish(value, ttl)
            elif value is not None:
                record.cache_stored = await finish(self.store, digest, token, value, ttl)
        elif store or lead is not None:
            served.response = self._storing(served.response, call, digest, token, lead, ttl,
                                            served.deployment.id, store)
        return served

    async def _hit(self, group: Group, call: Call, entry: dict[str, Any]) -> Served:
        from router.dispatch import Served

        await self._check_budgets(call, group.name)
        record = call.record
        record.cache_hit = True
        deployment = group.by_id.get(str(entry.get("dep"))) or group.deployments[0]
        kind, body = entry["kind"], entry["body"]
        if call.stream:
            return Served(replay(kind, body, call.endpoint, call.include_usage), deployment)
        return Served(assemble(body, call.endpoint) if kind == "chunks" else body, deployment)

    async def _check_budgets(self, call: Call, group: str) -> None:
        """What a hit still refuses: a limit of 0 (it allows nothing, hits included) and a
        spent budget, whose counter is read only for a key or team that has one."""
        ask = ask_for(call.principal, group, 0)  # raises for a limit of 0
        if ask is None:
            return  # the master key or anonymous: no budgets
        for who, entity in zip(("key", "team"), ask.entities, strict=False):
            if entity.budget < 0:
                continue
            usage = await self.state.tenant_usage(ask.tag, entity)
            if usage.spent >= entity.budget:
                raise BudgetExceeded(
                    f"The {who}'s budget of ${entity.budget / NANO:g} is spent.")

    async def _storing(self, chunks: AsyncIterator[dict[str, Any]], call: Call, digest: str,
                       token: str, lead: Lead | None, ttl: float, deployment_id: str,
                       store: bool) -> AsyncIterator[dict[str, Any]]:
        """The stream as it is, kept aside and stored once it completed: never a stream that
        failed, was cancelled, ended before a finish reason, or grew past the size limit."""
        kept: list[dict[str, Any]] | None = [] if store else None
        size, ended, complete = 0, False, False
        limit = self.params.max_entry_bytes
        try:
            async for chunk in chunks:
                if kept is not None:
                    size += len(orjson.dumps(chunk))
                    kept = kept if size <= limit else None
                    if kept is not None:
                        kept.append(chunk)
                ended = ended or finished(chunk)
                yield chunk
            complete = True
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
            value = None
            if complete and ended and kept is not None:
                value = _encode("chunks", kept, deployment_id)
                value = value if len(value) <= limit else None
            if lead is not None:
                call.record.cache_stored = await lead.finish(value, ttl)
            elif value is not None:
                call.record.cache_stored = await finish(self.store, digest, token, value, ttl)
