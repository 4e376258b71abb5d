"""`Router`: the engine, usable in process (`await router.acompletion(...)`) and by the gateway.

    router = Router(model_list=[...], routing_strategy="usage-based-routing-v2", timeout=2,
                    polling_interval=0.03, redis_host=..., num_retries=2, fallbacks=[...])
    response = await router.acompletion(model="gpt-4o", messages=[...], priority=0)

`Router.from_config(load_config(...))` builds the same engine from a config file.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from router.config import Config, parse_config
from router.dispatch import (
    CHAT,
    EMBED,
    LANEWAY_FIELDS,
    TEXT,
    Call,
    Dispatcher,
    Native,
    Served,
)
from router.errors import (
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    NotFound,
    QueueFull,
    RequestError,
)
from router.groups import Deployment, Group, ModelGroups, build_deployments
from router.httpclient import UpstreamClient
from router.lanes import Lanes, TenantHold
from router.objects import wrap
from router.options import RouterOptions
from router.records import CallRecord, Observer
from router.state.base import Kept, LineDepth, StateBackend, TenantShare, TierView
from router.strategies import strategy_named
from router.tenants.gate import allowed, check_access, clamp_priority, default_priority
from router.tenants.records import ANONYMOUS, Principal
from router.tenants.store import tenant_store_for

if TYPE_CHECKING:
    from router.cache.engine import ResponseCache
    from router.observe.state_timing import StateObserver

log = logging.getLogger("laneway.router")

__all__ = ["LANEWAY_FIELDS", "Router"]


PRIORITY_LIMIT = 2**20 - 1
"""`priority` is an integer in [-PRIORITY_LIMIT, PRIORITY_LIMIT]: with the arrival counter
below it, every line score stays an exact integer in a double (2^52)."""

_ROUTER_SETTING_KEYS = {"drop_params", "request_timeout", "success_callback", "failure_callback"}


def _cache_for(config: Config, state: StateBackend) -> ResponseCache | None:
    if not config.litellm_settings.cache:
        return None  # nothing of router/cache is imported without a cache
    from router.cache.engine import cache_for

    return cache_for(config, state)


def _redis_url(settings: dict[str, Any], env: Any) -> str | None:
    url = settings.get("redis_url") or env.get("REDIS_URL")
    if url:
        return str(url)
    host = settings.get("redis_host") or env.get("REDIS_HOST")
    if not host:
        return None
    port = settings.get("redis_port") or env.get("REDIS_PORT") or 6379
    password = settings.get("redis_password") or env.get("REDIS_PASSWORD")
    scheme = "rediss" if str(env.get("REDIS_SSL", "")).lower() in ("1", "true") else "redis"
    auth = f":{quote(str(password), safe='')}@" if password else ""
    return f"{scheme}://{auth}{host}:{port}/0"


def _state_for(
    settings: dict[str, Any], env: Any, observers: list[StateObserver]
) -> StateBackend:
    url = _redis_url(settings, env)
    if url is None:
        from router.state.memory import MemoryState

        return MemoryState()
    from router.observe.state_timing import TimedRedisState

    redis = TimedRedisState(url, observers)
    if settings.get("redis_fail_open"):
        from router.state.failover import FailOpenState

        return FailOpenState(redis)
    return redis


class Router:
    def __init__(self, model_list: list[dict[str, Any]] | None = None, **settings: Any) -> None:
        """Build from a `model_list` and `router_settings` keys given as keyword arguments."""
        router_settings = {k: v for k, v in settings.items() if k not in _ROUTER_SETTING_KEYS}
        litellm_settings = {k: v for k, v in settings.items() if k in _ROUTER_SETTING_KEYS}
        config = parse_config(
            {"model_list": model_list or [], "router_settings": router_settings,
             "litellm_settings": litellm_settings},
            source="Router(...)",
        )
        self._setup(config)

    @classmethod
    def from_config(cls, config: Config) -> Router:
        router = cls.__new__(cls)
        router._setup(config)
        return router

    def _setup(self, config: Config) -> None:
        self.config = config
        settings = {
            **config.litellm_settings.model_dump(exclude_none=True),
            **config.router_settings.model_dump(exclude_none=True),
        }
        self.options = RouterOptions.from_settings(settings)
        self.groups = ModelGroups(build_deployments(config),
                                  config.router_settings.model_group_alias)
        self.strategy = strategy_named(config.router_settings.routing_strategy,
                                       config.router_settings.routing_strategy_args)
        self.state_observers: list[StateObserver] = []
        """Called after each Redis round trip with (operation, seconds, error or None)."""
        self.state = _state_for(settings, config.env, self.state_observers)
        self.tenants = tenant_store_for(self.state, config)
        self.lanes = Lanes(self.state, lease=self.options.queue_lease,
                           safety_interval=self.options.safety_interval,
                           allowed_fails=self.options.allowed_fails,
                           cooldown=self.options.cooldown_time,
                           max_cooldown=self.options.max_cooldown)
        self.allow_request_mocks = bool(
            config.general_settings.allow_client_side_mock_response)
        self.dispatcher = Dispatcher(self.lanes, self.strategy, self.options, self._http,
                                     _estimate_tokens(self.options))
        self.cache = _cache_for(config, self.state)
        self.observers: list[Observer] = []
        self.budget_observers: list[Observer] = []
        """Told of a request whose spend crossed a soft budget (`soft_budget_crossed`), which
        may be after its response and its other observers."""
        self._client: UpstreamClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._secret_refresher: Any = None  # router/secrets/refresh.py, with a refresh_interval

    def reconfigure(self, config: Config) -> list[str]:
        """Serve `config` from now on (a hot reload). Groups, options and the strategy are
        swapped in one step; the state backend, its lanes (subscription, renewer) and the
        upstream pool are kept, so requests in flight finish on what they started with and
        limits, lines and cooldowns carry over (deployment ids are content hashes). Returns
        what could not change without a restart (the state backend's settings)."""
        settings = {
            **config.litellm_settings.model_dump(exclude_none=True),
            **config.router_settings.model_dump(exclude_none=True),
        }
        old = {**self.config.litellm_settings.model_dump(exclude_none=True),
               **self.config.router_settings.model_dump(exclude_none=True)}
        kept = []
        if config.litellm_settings.cache_params != self.config.litellm_settings.cache_params or (
                config.litellm_settings.cache != self.config.litellm_settings.cache):
            kept.append("litellm_settings: the response cache settings changed; they take "
                        "effect on restart")
        if (_redis_url(settings, config.env), settings.get("redis_fail_open")) != (
                _redis_url(old, self.config.env), old.get("redis_fail_open")):
            kept.append("router_settings: the state backend (Redis) settings changed; "
                        "they take effect on restart")
        options = RouterOptions.from_settings(settings)
        groups = ModelGroups(build_deployments(config), config.router_settings.model_group_alias)
        strategy = strategy_named(config.router_settings.routing_strategy,
                                  config.router_settings.routing_strategy_args)
        dispatcher = Dispatcher(self.lanes, strategy, options, self._http,
                                _estimate_tokens(options))
        dispatcher._running = self.dispatcher._running  # shutdown still cancels older calls
        lanes = self.lanes
        lanes.lease, lanes.safety_interval = options.queue_lease, options.safety_interval
        lanes.allowed_fails, lanes.cooldown = options.allowed_fails, options.cooldown_time
        lanes.max_cooldown = options.max_cooldown
        self.config, self.options, self.groups = config, options, groups
        self.strategy, self.dispatcher = strategy, dispatcher
        self.allow_request_mocks = bool(config.general_settings.allow_client_side_mock_response)
        return kept

    # -- resources ---------------------------------------------------------------------------
    def _http(self) -> UpstreamClient:
        """One pooled client per process, rebuilt when the event loop changes (its
        connections belong to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client_loop = loop
            self._client = UpstreamClient(max_response_bytes=self.options.max_response_bytes)
        return self._client

    async def warm(self) -> None:
        """Cold-start work done before the first request where a server has a start-up phase:
        connect the state backend and load the tokenizers that tpm limits will need."""
        await self.lanes.start()
        self._keep_secrets_fresh()
        for d in self.groups.all_deployments():
            if d.tpm or self.strategy.order == "usage":
                d.token_counter().text("x")

    def _keep_secrets_fresh(self) -> None:
        """Start the background re-read of secrets on this loop, where the config asks for
        one (`key_management_settings.refresh_interval`); a no-op otherwise."""
        binding = self.config._secrets
        if binding is None or not binding.interval:
            return
        if self._secret_refresher is None:
            from router.secrets.refresh import SecretRefresher

            self._secret_refresher = SecretRefresher(self)
        self._secret_refresher.ensure_running()

    async def aclose(self) -> None:
        if self._secret_refresher is not None:
            await self._secret_refresher.aclose()
        await self.dispatcher.aclose()
        if self._client is not None and self._client_loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None
        if self.cache is not None:
            await self.cache.aclose()
        await self.lanes.drain()
        await self.state.close()

    # -- the gateway's entry -----------------------------------------------------------------
    async def serve(
        self,
        endpoint: str,
        body: dict[str, Any],
        *,
        request_id: str | None = None,
        priority: Any = None,
        queue: bool = False,
        abandoned: Callable[[], Awaitable[None]] | None = None,
        principal: Principal = ANONYMOUS,
        native: Native | None = None,
        forward_headers: Mapping[str, str] | None = None,
        keep: Callable[[dict[str, Any] | None], Kept | None] | None = None,
    ) -> tuple[Served, CallRecord]:
        """Serve one OpenAI request body for `principal`. `priority` (if given) overrides the
        body's; `queue` lets the request wait in line even where `max_queue_size` is 0;
        `native` carries the request as a client sent it in another format (the body is its
        chat translation), for deployments that speak that format; `forward_headers` go to
        the upstream with the call; `keep` makes what the release stores (see `Call.keep`)."""
        if self.config._secrets is not None:
            self._keep_secrets_fresh()  # under Mangum there is no start-up phase to do it in
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("`model` is required and must be a string.", param="model")
        prio = self._priority(body.get("priority") if priority is None else priority,
                              principal, body.get("metadata"))
        stream = bool(body.get("stream")) and endpoint != EMBED
        timeout = self.options.timeout
        asked = body.get("timeout")
        if isinstance(asked, int | float) and not isinstance(asked, bool) and asked > 0:
            timeout = min(timeout, float(asked))  # NaN and inf fail `min` harmlessly
        _check_params(body)
        clean = {k: v for k, v in body.items() if k not in LANEWAY_FIELDS}
        if self.cache is None:
            clean.pop("cache", None)  # LiteLLM's per-request cache controls: never upstream
        metadata = _openai_metadata(body.get("metadata"))
        if metadata is not None:
            clean["metadata"] = metadata
        options = clean.get("stream_options") or {}
        line_id = uuid.uuid4().hex
        record = CallRecord(request_id=request_id or line_id, endpoint=endpoint,
                            model=model, priority=prio, stream=stream)
        call = Call(
            endpoint=endpoint, body=clean, record=record, priority=prio, stream=stream,
            deadline=time.monotonic() + timeout, line_id=line_id,
            include_usage=bool(options.get("include_usage")),
            force_queue=queue,
            abandoned=abandoned,
            principal=principal,
            native=native,
            forward_headers=forward_headers,
            keep=keep,
        )
        if principal.key is not None:
            call.tenant = TenantHold(line_id, call.deadline)
            record.key_alias = principal.key.key_alias
            record.team_id = principal.key.team_id
        if body.get("mock_response") is not None:
            if not self.allow_request_mocks:
                raise BadRequest(
                    "`mock_response` in a request is turned off on this gateway "
                    "(general_settings.allow_client_side_mock_response).",
                    param="mock_response")
            call.mock_response = _checked_mock(body["mock_response"])
        try:
            served = await (self._with_fallbacks(model, call) if self.cache is None
                            else self._cached(model, call))
        except RequestError as exc:
            record.status, record.error_type = exc.status, type(exc).__name__
            await self._end_tenant(call)
            self._notify(record)
            raise
        except asyncio.CancelledError:  # the client went away (possibly while in line)
            record.status, record.error_type = 499, "ClientDisconnected"
            await self._end_tenant(call)
            self._notify(record)
            raise
        except Exception:  # a bug: still a finished request, for logs, metrics and callbacks
            record.status, record.error_type = 500, "InternalError"
            await self._end_tenant(call)
            self._notify(record)
            raise
        if isinstance(served.response, dict):
            await self._end_tenant(call)
            self._notify(record)
        else:
            served.response = self._notify_after(served.response, call)
        return served, record

    def _priority(self, value: Any, principal: Principal, metadata: Any) -> int:
        if value is not None:
            priority = parse_priority(value)
        else:
            own = default_priority(principal, metadata)
            priority = own if own is not None else self.options.default_priority or 0
        return clamp_priority(principal, priority)

    async def _end_tenant(self, call: Call, gone: bool = False) -> None:
        """The request is over: its tenant reservation ends, unless its last attempt already
        ended it with the real usage. A failed request used nothing; a client that left in
        the middle of a stream is charged what was reserved (it got part of the answer)."""
        hold = call.tenant
        if hold is None:
            return
        if not hold.ended:
            cost = hold.ask.cost if gone and hold.ask is not None else 0
            await self.lanes.end_tenant(hold, -1 if gone else 0, cost)
        pending = hold.pending
        if pending is not None and not pending.done():
            # Ended by its last attempt after the response: the soft budget is known later.
            pending.add_done_callback(lambda _: self._soft_budget(call.record, hold))
        else:
            self._soft_budget(call.record, hold)

    def _soft_budget(self, record: CallRecord, hold: TenantHold) -> None:
        """Tell the budget observers (alerts) when this request's spend crossed its key's or
        team's soft budget."""
        released = hold.released
        if released is None or not released.soft_crossed:
            return
        record.soft_budget_crossed = tuple(
            ("key", "team")[i] for i in released.soft_crossed if i < 2)
        log.info("request %s crossed the soft budget of its %s", record.request_id,
                 " and ".join(record.soft_budget_crossed))
        for observer in self.budget_observers:
            try:
                observer(record)
            except Exception:  # an observer must never break a request
                log.exception("budget observer failed")

    def group_for(self, model: str, principal: Principal,
                  record: CallRecord | None = None) -> Group:
        """The group serving `model` to `principal`: else a 404 that lists only the models
        `principal` may call, or a 401 when it may not call this one. `record` learns the
        group before access is checked (a refused request is logged with it)."""
        group = self.groups.get(model) or self.groups.resolve(
            model, lambda: self.model_names_for(principal))
        if record is not None:
            record.model_group = group.name  # known even if the request never gets admitted
        check_access(principal, model, group)
        return group

    async def _with_fallbacks(self, model: str, call: Call) -> Served:
        group = self.group_for(model, call.principal, call.record)
        try:
            return await self.dispatcher.run(group, call)
        except RequestError as exc:
            targets = self._fallbacks_for((model, group.name), exc)
            if not targets:
                raise
            last: RequestError = exc
            for target in targets:
                fallback = self.groups.get(target)
                if fallback is None or time.monotonic() >= call.deadline:
                    continue
                log.info("falling back from %s to %s after %s", group.name, target,
                         type(exc).__name__)
                call.record.fallback_from = group.name
                try:
                    return await self.dispatcher.run(fallback, call)
                except RequestError as again:
                    last = again
            raise last from None

    # -- the response cache (router/cache): answered before admission ------------------------
    async def _cached(self, model: str, call: Call) -> Served:
        """A hit skips admission but not model access, which is checked first."""
        assert self.cache is not None
        group = self.group_for(model, call.principal, call.record)
        return await self.cache.serve(group, call, lambda: self._with_fallbacks(model, call))

    def _fallbacks_for(self, names: tuple[str, str], exc: RequestError) -> list[str]:
        """Fallbacks configured for the requested name, else for its group (a wildcard's
        group is its pattern, so `openai/gpt-4o` may have fallbacks of its own)."""
        o = self.options

        def first(table: Mapping[str, list[str]]) -> list[str]:
            return next((list(table[n]) for n in names if n in table), [])

        if isinstance(exc, ContextWindowExceeded):
            return first(o.context_window_fallbacks)
        if isinstance(exc, ContentPolicyViolation):
            return first(o.content_policy_fallbacks)
        if isinstance(exc, BadRequest | QueueFull):
            return []  # the request itself is at fault, or the line is full on purpose
        if isinstance(exc, NotFound) and exc.code != "upstream_not_found":
            return []
        return first(o.fallbacks) or list(o.default_fallbacks)

    def _notify(self, record: CallRecord) -> None:
        for observer in self.observers:
            try:
                observer(record)
            except Exception:  # an observer must never break a request
                log.exception("observer failed")

    async def _notify_after(
        self, chunks: AsyncIterator[dict[str, Any]], call: Call
    ) -> AsyncIterator[dict[str, Any]]:
        record, gone = call.record, False
        try:
            async for chunk in chunks:
                yield chunk
        except RequestError as exc:
            record.status, record.error_type = exc.status, type(exc).__name__
            raise
        except BaseException:
            gone = True  # the client went away mid-stream
            raise
        finally:
            await _close(chunks)  # closed early: the relay below ends (and releases) now
            await self._end_tenant(call, gone=gone)
            self._notify(record)

    # -- the Python API ----------------------------------------------------------------------
    async def _api(self, endpoint: str, params: dict[str, Any], priority: Any) -> Any:
        served, _ = await self.serve(endpoint, params, priority=priority)
        if isinstance(served.response, dict):
            return wrap(served.response)
        return _wrapped_stream(served.response)

    async def acompletion(
        self, model: str, messages: list[dict[str, Any]], *, priority: int | None = None,
        **params: Any,
    ) -> Any:
        """A chat completion (or, with `stream=True`, an async iterator of chunks)."""
        return await self._api(CHAT, {"model": model, "messages": messages, **params}, priority)

    async def atext_completion(
        self, model: str, prompt: Any, *, priority: int | None = None, **params: Any
    ) -> Any:
        return await self._api(TEXT, {"model": model, "prompt": prompt, **params}, priority)

    async def aembedding(self, model: str, input: Any, **params: Any) -> Any:
        return await self._api(EMBED, {"model": model, "input": input, **params}, None)

    # -- introspection -----------------------------------------------------------------------
    def model_names(self) -> list[str]:
        return self.groups.names()

    def model_names_for(self, principal: Principal) -> list[str]:
        """The model names `principal` may call (everything for the master key)."""
        if principal.unrestricted:
            return self.groups.names()
        out = []
        for name in self.groups.names():
            group = self.groups.get(name)
            if group is not None and allowed(principal, name, group):
                out.append(name)
        return out

    def deployments(self) -> list[Deployment]:
        return self.groups.all_deployments()

    async def tenant_shares(self, groups: Iterable[str] | None = None
                            ) -> dict[str, list[TenantShare]]:
        """Fair share per model group (every group, or those named): each tenant's waiting
        requests and share of the service since the group was last idle (groups with none
        omitted). At most SHARE_LABELS tenants per group (router/state/base.py)."""
        names = list(groups) if groups is not None else [
            g.name for g in self.groups.all_groups()]
        out = {}
        for name in names:
            shares = await self.lanes.shares(name)
            if shares:
                out[name] = shares
        return out

    async def queue_status(self) -> dict[str, list[LineDepth]]:
        """Waiting requests per model group and priority (groups with an empty line omitted)."""
        out = {}
        for group in self.groups.all_groups():
            depth = await self.lanes.depth(group.name)
            if depth:
                out[group.name] = depth
        return out

    async def tier_use(self, group_names: Sequence[str]) -> dict[str, tuple[TierView, ...]]:
        """Each reservation tier's waiters and use per model group (nothing when
        `priority_reservation` is not set): read only, one call per group, all at once."""
        tiers = [name for name, _ in self.options.priority_reservation]
        if not tiers:
            return {}
        groups = [g for g in (self.groups.get(n) for n in group_names) if g is not None]
        views = await asyncio.gather(*(self.state.overview(
            g.name, [d.id for d in g.deployments], tiers) for g in groups))
        return {g.name: v.tiers for g, v in zip(groups, views, strict=True)}


def parse_priority(value: Any) -> int:
    """A client's `priority`: an integer (or a string of one, as headers carry it) within
    ±PRIORITY_LIMIT; anything else is a 400."""
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("`priority` must be an integer (lower is served first).",
                         param="priority")
    if not -PRIORITY_LIMIT <= value <= PRIORITY_LIMIT:
        raise BadRequest(f"`priority` must be between {-PRIORITY_LIMIT} and {PRIORITY_LIMIT}.",
                         param="priority")
    return value


_INTEGER = re.compile(r"[+-]?[0-9]{1,16}")


def _check_params(body: dict[str, Any]) -> None:
    """The request params laneway itself reads, checked before they are used."""
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 < value < 2**31):
            raise BadRequest(f"`{name}` must be a positive integer.", param=name)
    dims = body.get("dimensions")
    if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int)
                             or not 0 < dims <= 65536):
        raise BadRequest("`dimensions` must be a positive integer (at most 65536).",
                         param="dimensions")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise BadRequest("`stream_options` must be an object.", param="stream_options")


def _checked_mock(value: Any) -> Any:
    """A request's `mock_response`, refused (400) where the mock adapter could not use it: an
    error spec it cannot read, or `choices` that are not a non-empty list of objects."""
    if not isinstance(value, Mapping):
        return value  # reply text (anything else is answered as its text)
    if "error" in value:
        from router.providers.mock import mock_error

        try:
            error = mock_error(value)
        except (TypeError, ValueError, AttributeError, OverflowError):
            error = None
        wait = error.retry_after if error is not None else None
        if error is None or not (wait is None or (
                isinstance(wait, int | float) and not isinstance(wait, bool)
                and math.isfinite(wait) and wait >= 0)):
            raise BadRequest(
                "`mock_response.error` must be an error name or an object with an integer "
                "`status`, a `message` and a non-negative `retry_after`.", param="mock_response")
        return value
    choices = value.get("choices")
    if "choices" in value and not (isinstance(choices, list) and choices
                                   and all(isinstance(c, Mapping) for c in choices)):
        raise BadRequest("`mock_response.choices` must be a non-empty array of objects.",
                         param="mock_response")
    return value


def _openai_metadata(value: Any) -> dict[str, str] | None:
    """The request's `metadata` as OpenAI takes it (at most 16 string pairs, keys up to 64 and
    values up to 512 characters), passed on to upstreams that accept it; LiteLLM-style
    metadata (tags, trace ids, nested values) stays laneway's, for logs and callbacks."""
    if not isinstance(value, dict) or not value or len(value) > 16:
        return None
    for k, v in value.items():
        if not (isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512):
            return None
    return value


async def _wrapped_stream(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[Any]:
    try:
        async for chunk in chunks:
            yield wrap(chunk)
    finally:
        await _close(chunks)


async def _close(chunks: AsyncIterator[Any]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


def _as_text(value: Any) -> str | list[str]:
    """A prompt or embedding input as text to count (token-id arrays counted as text too)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return "" if value is None else str(value)


def _estimate_tokens(options: RouterOptions) -> Any:
    def estimate(d: Deployment, call: Call) -> tuple[int, int]:
        counter = d.token_counter()
        body = call.body
        if call.endpoint == CHAT:
            prompt = counter.messages(body.get("messages") or [], body.get("tools"))
        else:
            prompt = counter.text(_as_text(body.get("prompt") if call.endpoint == TEXT
                                           else body.get("input")))
        if call.endpoint == EMBED:
            return prompt, 0
        completion = (body.get("max_completion_tokens") or body.get("max_tokens")
                      or d.defaults.get("max_tokens") or options.default_completion_tokens)
        return prompt, int(completion)

    return estimate
