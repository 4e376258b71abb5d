"""One request against one model group: admission, the upstream call, retries with backoff.

Policy lives here (which deployment next, whether to retry, when to pause); every state
transition of an admitted attempt lives in `Lanes` and its `Attempt`, which releases the slot
exactly once whatever happens here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, cast

from router.errors import (
    BadRequest,
    LeaseLost,
    NotFound,
    PermissionDenied,
    QueueFull,
    RateLimited,
    RequestError,
    RequestTimeout,
    UpstreamError,
)
from router.groups import Deployment, Group
from router.lanes import KEEP_RESERVATION, Attempt, Lanes, TenantHold, TenantRefusal
from router.options import RouterOptions
from router.pricing import NANO, call_cost, price_of
from router.providers.base import JSON, CallContext, Provider
from router.providers.catalog import get_provider
from router.records import CallRecord
from router.state.base import AdmitRequest, Candidate, Kept, TenantAsk, tier_slot
from router.strategies import Strategy
from router.tenants.gate import ask_for, needs_estimate, refusal_error
from router.tenants.records import ANONYMOUS, Principal

log = logging.getLogger("laneway.dispatch")

__all__ = ["LANEWAY_FIELDS", "Call", "Dispatcher", "Native", "Served"]

MAX_REQUEUES = 3
"""Times a request asks again for capacity after its instance lost an admission's lease."""

CHAT, TEXT, EMBED = "chat", "text", "embed"
RESPONSES, MESSAGES = "responses", "messages"
"""Formats some providers speak natively: OpenAI's Responses API, Anthropic's Messages API."""

CUT_SHORT = 0.9
"""An attempt whose time the request's deadline cut below this share of the deployment's own
timeout does not hold its timeout against the deployment (`Dispatcher._timed_out`)."""


LANEWAY_FIELDS = frozenset({"priority", "mock_response", "metadata", "timeout", "num_retries"})
"""Request fields laneway consumes itself; they are never sent upstream as they are (an
OpenAI-shaped `metadata` is passed on to upstreams that take it: router/router.py)."""
_NOT_NATIVE = LANEWAY_FIELDS - {"metadata"}
"""What a native body loses on its way upstream (the Responses and Messages APIs have a
`metadata` of their own)."""


@dataclass(slots=True)
class Native:
    """A chat request that arrived in another format (`kind`), carried as it was sent so that a
    deployment whose adapter speaks that format gets it unchanged (`Provider.speaks`,
    `native_call`, `native_stream`); every other deployment is served the chat body."""

    kind: str
    body: JSON
    """The client's body as it was sent (laneway's own fields are left out when, and only
    when, it goes upstream)."""
    usage: Callable[[Any], JSON | None]
    """The chat-style usage (prompt_tokens, completion_tokens) of a native reply's `usage`."""
    meter: Callable[[], Callable[[JSON], JSON | None]]
    """A fresh reader of a native stream's events: each call returns the usage known so far."""


@dataclass(slots=True)
class Call:
    """One client request as the engine sees it."""

    endpoint: str
    body: JSON
    """The OpenAI body without laneway's own fields."""
    record: CallRecord
    deadline: float
    """time.monotonic() by which the whole request must be done."""
    priority: int
    line_id: str = ""
    """The request's identity in shared state: laneway's own, never the client's
    `x-request-id` (two requests sending the same id each keep their own place in line)."""
    stream: bool = False
    include_usage: bool = False
    tokens: int | None = None
    """Tokens to reserve (prompt plus the completion's cap); estimated on first need."""
    estimate: tuple[int, int] = (0, 0)
    """(prompt tokens, completion cap) behind `tokens`."""
    principal: Principal = ANONYMOUS
    """Who is calling: a virtual key's limits and budgets apply to the whole request."""
    tenant: TenantHold | None = None
    """The request's reservation on its key's and team's limits (virtual keys only)."""
    fair_tenant: str = ""
    """Fair share: whose request this is ('' = arrival order)."""
    fair_cost: int = 1
    fair_weight: float = 1.0
    abandoned: Callable[[], Awaitable[None]] | None = None
    """Returns once the client has gone away (watched while the request waits in line)."""
    force_queue: bool = False
    """Wait in line even where the group's `max_queue_size` is 0 (the /queue/ routes)."""
    mock_response: Any = None
    """A request-level `mock_response`: answered by the mock adapter without admission, so it
    never uses a deployment's capacity nor changes its health."""
    native: Native | None = None
    """The request in the format it arrived in, when that is not chat's (see `Native`)."""
    forward_headers: Mapping[str, str] | None = None
    """Client headers to send upstream (general_settings.forward_client_headers_to_llm_api)."""
    keep: Callable[[JSON | None], Kept | None] | None = None
    """What to store with the release of the attempt that serves the request in chat's format:
    called with the reply (None for a stream, once its last chunk has been read). It must not
    raise; None keeps nothing."""


@dataclass(slots=True)
class Served:
    """A successful call: the response (or stream) and the deployment that served it."""

    response: JSON | AsyncIterator[JSON]
    deployment: Deployment
    native: bool = False
    """The response is in `Call.native`'s format (the deployment spoke it), not chat's."""
    headers: Mapping[str, str] | None = None
    """The upstream's rate-limit headers (see `providers._wire.UPSTREAM_HEADERS`)."""


class Dispatcher:
    def __init__(
        self,
        lanes: Lanes,
        strategy: Strategy,
        options: RouterOptions,
        http: Callable[[], Any],
        estimate: Callable[[Deployment, Call], tuple[int, int]],
    ) -> None:
        self.lanes = lanes
        self.strategy = strategy
        self.options = options
        self._http = http
        self._estimate = estimate
        self._running: set[asyncio.Future[Served]] = set()

    async def aclose(self) -> None:
        """Shutting down: upstream calls still running for clients that left are cancelled,
        and so release their slots while the state backend is still there."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _candidate(self, d: Deployment) -> Candidate:
        par = d.max_parallel_requests or self.options.default_max_parallel_requests or 0
        return Candidate(d.id, d.rpm or 0, d.tpm or 0, par)

    async def run(self, group: Group, call: Call) -> Served:
        """Serve `call` from `group`, retrying on other deployments (or after a pause)."""
        if call.mock_response is not None:
            return await self._mock(group, call)
        failed: set[str] = set()
        tries = requeued = 0
        while True:
            tries += 1
            candidates = self.strategy.arrange(group.deployments, failed)
            if call.tokens is None and (
                    self.strategy.order == "usage" or any(d.tpm for d in candidates)
                    or (call.tenant is not None and needs_estimate(call.principal, group.name))):
                call.estimate = self._estimate(candidates[0], call)
                call.tokens = sum(call.estimate)
                _check_fits(group, call.tokens)
            self._fair_share(call)
            attempt = await self._admit(group, call, candidates, tries)
            deployment = candidates[attempt.index]
            try:
                return await self._attempt(deployment, group, call, attempt)
            except LeaseLost:
                # Not the deployment's fault, nor a retry: the slot was given back unsent, and
                # the request asks again (at the front of its priority, as an admitted one).
                requeued += 1
                if requeued > MAX_REQUEUES or time.monotonic() >= call.deadline:
                    raise
            except RequestError as exc:
                if not exc.retryable or tries - requeued > self.options.num_retries:
                    raise
                failed.add(deployment.id)
                call.record.retries += 1
                await self._pause(exc, tries, group, failed, call)
            finally:
                if attempt.cooled:  # a stream's attempt is still open here: its relay notes it
                    call.record.cooldowns.append(deployment.id)

    async def _admit(
        self, group: Group, call: Call, candidates: list[Deployment], tries: int
    ) -> Attempt:
        lim = self.options.queue_limits(group.name, call.priority)
        tiers = self.options.priority_reservation
        tier = self.options.tier_of(_tier_name(call.principal)) if tiers else 0
        slot = f"{call.line_id}.{tries}"
        req = AdmitRequest(
            group=group.name,
            request_id=call.line_id,
            slot_id=tier_slot(tiers[tier][0], slot) if tiers else slot,
            priority=call.priority,
            tokens=call.tokens or 0,
            candidates=[self._candidate(d) for d in candidates],
            order=self.strategy.order,
            lease=self.options.queue_lease,
            max_waiting=-1 if call.force_queue and lim[0] == 0 else lim[0],
            max_waiting_priority=lim[1],
            retry=tries > 1,
            latency_buffer=self.strategy.latency_buffer,
            tenant=self._tenant_ask(group, call),
            fair_tenant=call.fair_tenant,
            fair_cost=call.fair_cost,
            aging=self.options.priority_aging,
            tiers=tiers,
            tier=tier,
        )
        try:
            attempt = await self.lanes.admit(req, call.deadline, call.abandoned, call.tenant)
        except TenantRefusal as refusal:
            raise refusal_error(refusal.refused, call.principal) from None
        except QueueFull as exc:
            if req.max_waiting == 0:  # waiting is switched off: plain rate limiting
                raise RateLimited(
                    f"No capacity left on model group `{group.name}`; "
                    f"retry after {exc.retry_after:.0f}s.",
                    retry_after=exc.retry_after,
                ) from None
            raise
        if attempt.waited:
            call.record.queued = True
            call.record.queue_seconds += attempt.waited
        return attempt

    def _fair_share(self, call: Call) -> None:
        """Whose request this is for fair share, and its weighted cost (once per request)."""
        if call.fair_tenant:
            return
        o = self.options
        p = call.principal
        weight = 1.0
        if o.fairness == "off":
            return
        if o.fairness == "user":
            user = call.body.get("user")
            tenant = f"u:{user[:128]}" if isinstance(user, str) and user else "-"
        elif p.key is not None:
            use_team = o.fairness == "team" and p.team is not None
            tenant = f"t:{p.team.team_id}" if use_team and p.team else f"k:{p.key.key_hash[:24]}"
            weight = (p.team.limits if use_team and p.team else p.key.limits).fair_share_weight
        else:
            tenant = "-"  # the master key (or no auth): one tenant of its own
        prompt, completion = call.estimate if call.tokens is not None else (
            0, o.default_completion_tokens)
        call.fair_tenant = tenant
        call.fair_weight = weight if weight > 0 else 1.0
        call.fair_cost = _weighted(prompt, completion, o.fairness_output_weight,
                                   call.fair_weight)

    def _tenant_ask(self, group: Group, call: Call) -> TenantAsk | None:
        """What the request's first admission asks of its tenant (None once it holds it)."""
        hold = call.tenant
        if hold is None or hold.held or hold.ended:
            return None
        prompt, completion = call.estimate
        # The most the call can cost on any deployment of the group, held against budgets.
        cost = max((call_cost(price_of(d), prompt, completion) for d in group.deployments),
                   default=0)
        hold.ask = ask_for(call.principal, group.name, cost)
        return hold.ask

    def _fair_delta(self, call: Call) -> int:
        if not call.fair_tenant:
            return 0
        rec = call.record
        real = _weighted(rec.prompt_tokens, rec.completion_tokens,
                         self.options.fairness_output_weight, call.fair_weight)
        return real - call.fair_cost

    async def _pause(
        self, exc: RequestError, tries: int, group: Group, failed: set[str], call: Call
    ) -> None:
        """Back off before retrying when no untried deployment is left."""
        if any(d.id not in failed for d in group.deployments):
            return
        base = max(self.options.retry_after, 0.1 * 2 ** (tries - 1))
        asked = exc.retry_after if exc.retry_after and math.isfinite(exc.retry_after) else 0.0
        pause = max(base * (0.5 + random.random()), asked)
        if pause >= call.deadline - time.monotonic():
            raise exc
        await asyncio.sleep(pause)

    def _context(self, d: Deployment, call: Call) -> CallContext:
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeout("Request timed out before an upstream call could start.")
        timeout = min(d.timeout or self.options.timeout, remaining)
        stream_timeout = d.stream_timeout or self.options.stream_timeout
        return CallContext(
            http=self._http(),
            timeout=timeout,
            stream_timeout=min(stream_timeout, remaining) if stream_timeout else None,
            drop_params=_drop_all(d, self.options.drop_params),
            request_id=call.record.request_id,
            deadline=call.deadline,
            extra={"forward_headers": call.forward_headers} if call.forward_headers else {},
        )

    def _timed_out(self, exc: RequestTimeout, d: Deployment, ctx: CallContext
                   ) -> RequestTimeout:
        """A timeout counts against the deployment only when it had (most of) its own
        timeout, or the gateway's when it has none. One cut short by the request's deadline
        (a client's shorter `timeout`, or the time it spent in line) says nothing of the
        deployment: else a caller asking for `timeout: 0.01` could fail it `allowed_fails`
        times and cool it down for everyone."""
        # "Most": the gateway's own work and a short wait in line always take a little of the
        # request's time before an attempt, and a deployment that hangs is still at fault.
        exc.requested = ctx.timeout < CUT_SHORT * (d.timeout or self.options.timeout)
        return exc

    def _upstream_body(self, d: Deployment, call: Call) -> JSON:
        body = {**d.defaults, **call.body} if d.defaults else {**call.body}
        extra = d.params.get("extra_body")
        if isinstance(extra, Mapping):
            body.update(extra)  # the operator's fixed additions win over the client's
        drop = d.params.get("drop_params")
        if isinstance(drop, list | tuple):
            for name in drop:
                body.pop(name, None)
        body["model"] = d.model
        return body

    def _native_body(self, d: Deployment, native: Native) -> JSON:
        """The client's own body for a deployment that speaks its format: only the operator's
        fixed changes apply (chat-named defaults would not fit another format)."""
        body = {k: v for k, v in native.body.items() if k not in _NOT_NATIVE}
        extra = d.params.get("extra_body")
        if isinstance(extra, Mapping):
            body.update(extra)
        drop = d.params.get("drop_params")
        if isinstance(drop, list | tuple):
            for name in drop:
                body.pop(name, None)
        body["model"] = d.model
        return body

    # -- one attempt -------------------------------------------------------------------------
    async def _attempt(self, d: Deployment, group: Group, call: Call, attempt: Attempt
                       ) -> Served:
        rec = call.record
        rec.deployment_id, rec.provider, rec.model_group = d.id, d.provider, group.name
        provider = get_provider(d.provider)
        native = _native_for(provider, d, call)
        if call.stream and call.endpoint != EMBED:
            async with attempt:
                return await self._open_stream(provider, d, call, attempt, native)
        # If the client goes away, the upstream still works on the call (a non-streamed answer
        # is generated anyway), so the call runs on and keeps its slot until the upstream
        # answers: the upstream never sees more calls at once than the limit allows.
        task = asyncio.ensure_future(self._complete(provider, d, call, attempt, native))
        self._running.add(task)
        task.add_done_callback(_forget(self._running))
        return await asyncio.shield(task)

    async def _complete(self, provider: Provider, d: Deployment, call: Call, attempt: Attempt,
                        native: Native | None = None) -> Served:
        rec = call.record
        async with attempt:
            attempt.check_lease()
            ctx = self._context(d, call)
            started = time.monotonic()
            try:
                # The client's read timeout bounds each read only: a body that trickles in
                # would otherwise hold the request (and its slot) far past its deadline.
                async with asyncio.timeout(ctx.timeout):
                    if native is None:
                        body = self._upstream_body(d, call)
                        response = await _guarded(
                            d, _answer(provider, call.endpoint, d, body, ctx))
                    else:
                        body = self._native_body(d, native)
                        response = await _guarded(d, cast(Any, provider).native_call(
                            d, native.kind, body, ctx), native)
                if native is None:
                    tokens = _usage(d, response, rec)
                else:
                    tokens = _usage(d, {"usage": native.usage(_get(response, "usage"))}, rec)
            except TimeoutError:
                raise self._timed_out(RequestTimeout(
                    f"No complete response from the upstream within {ctx.timeout:.1f}s."
                ), d, ctx) from None
            except RequestTimeout as exc:  # an adapter's read timeout
                raise self._timed_out(exc, d, ctx) from None
            finally:
                # Summed over attempts, so that time outside upstream calls is laneway's own.
                rec.upstream_seconds += time.monotonic() - started
            attempt.succeeded(tokens, cost=_cost(d, rec))
            attempt.fair_delta = self._fair_delta(call)
            if call.keep is not None and native is None:
                attempt.keep = call.keep(response)
        return Served(response, d, native=native is not None,
                      headers=ctx.extra.get("upstream_headers"))

    async def _open_stream(
        self, provider: Provider, d: Deployment, call: Call, attempt: Attempt,
        native: Native | None = None,
    ) -> Served:
        """Start the upstream stream and wait for its first chunk, so that failures before any
        byte reached the client can still be retried, fall back, or get their own status."""
        attempt.check_lease()
        ctx = self._context(d, call)
        started = time.monotonic()
        if native is None:
            chunks = cast(AsyncGenerator[JSON, None], (
                provider.chat_stream if call.endpoint == CHAT
                else provider.text_completion_stream)(d, self._upstream_body(d, call), ctx))
        else:
            chunks = cast(AsyncGenerator[JSON, None], cast(Any, provider).native_stream(
                d, native.kind, self._native_body(d, native), ctx))
        try:
            async with asyncio.timeout(ctx.timeout):
                first = await _guarded(d, anext(chunks), native)
        except StopAsyncIteration:
            first = None
        except TimeoutError:
            await chunks.aclose()
            raise self._timed_out(RequestTimeout(
                f"No response from the upstream within {ctx.timeout:.0f}s."), d, ctx) from None
        except RequestTimeout as exc:  # an adapter's read timeout
            await chunks.aclose()
            raise self._timed_out(exc, d, ctx) from None
        except BaseException:
            await chunks.aclose()
            raise
        finally:
            call.record.upstream_seconds += time.monotonic() - started
        call.record.time_to_first_token = time.monotonic() - started
        relay = cast(AsyncGenerator[JSON, None], self._relay(
            first, chunks, d, call, attempt.hand_off(), started,
            native.meter() if native is not None else None))
        served = Served(_chunks(), d, native=native is not None,
                        headers=ctx.extra.get("upstream_headers"))
        # Start the relay now: a started async generator that is dropped unread (the client
        # left before the first byte) is closed by the event loop, which runs its `finally`
        # and so ends the attempt. One never started would hold it until its deadline.
        try:
            head = await anext(relay)
        except StopAsyncIteration:
            return served
        served.response = _chunks(head, rest=relay)
        return served

    async def _relay(
        self, first: JSON | None, chunks: AsyncGenerator[JSON, None], d: Deployment,
        call: Call, attempt: Attempt, started: float,
        meter: Callable[[JSON], JSON | None] | None = None,
    ) -> AsyncIterator[JSON]:
        """Relay chunks, noting the usage they report (`meter` reads it from a native
        format's events, which are relayed as they are)."""
        rec = call.record
        gap = d.stream_timeout or self.options.stream_timeout
        deadline = call.deadline
        usage: Any = None
        ended: BaseException | None = None
        try:
            pending = [first] if first is not None else []
            while True:
                if pending:
                    chunk = pending.pop()
                else:
                    try:
                        if gap:
                            async with asyncio.timeout(min(gap, deadline - time.monotonic())):
                                chunk = await _guarded(d, anext(chunks))
                        else:  # the read timeout (and the deadline) of the upstream call apply
                            chunk = await _guarded(d, anext(chunks))
                    except StopAsyncIteration:
                        break
                if time.monotonic() > deadline:
                    ended = RequestTimeout("The stream ran past the request's timeout.")
                    ended.requested = True  # a long answer, not a failing deployment
                    raise ended
                if meter is not None:
                    usage = meter(chunk) or usage
                elif chunk.get("usage"):
                    usage = chunk["usage"]
                    if not call.include_usage:
                        if chunk.get("choices"):
                            chunk = {**chunk, "usage": None}
                        else:
                            continue
                yield chunk
            tokens = _usage(d, {"usage": usage}, rec) if usage else KEEP_RESERVATION
            attempt.succeeded(tokens, latency=rec.time_to_first_token, cost=_cost(d, rec))
            attempt.fair_delta = self._fair_delta(call)
            if call.keep is not None and meter is None:
                attempt.keep = call.keep(None)
        except TimeoutError:
            ended = RequestTimeout("The upstream stream stalled.")
            # Stalled for a whole `gap`: the deployment's; cut short by the deadline: not.
            ended.requested = deadline - time.monotonic() < 0.001
            raise ended from None
        except RequestTimeout as exc:  # an adapter's read timeout between chunks: the same
            exc.requested = exc.requested or deadline - time.monotonic() < 0.001
            ended = exc
            raise
        except BaseException as exc:
            ended = exc
            raise
        finally:
            await chunks.aclose()
            rec.upstream_seconds += time.monotonic() - started - (rec.time_to_first_token or 0.0)
            if await asyncio.shield(attempt.end(ended)):
                rec.cooldowns.append(d.id)

    # -- request-level mocks -----------------------------------------------------------------
    async def _mock(self, group: Group, call: Call) -> Served:
        """A `mock_response` sent by the client: answered at once by the mock adapter. It is
        never admitted, so it takes no capacity and records nothing against a deployment."""
        d = replace(group.deployments[0], provider="mock", mock_response=call.mock_response)
        rec = call.record
        rec.deployment_id, rec.provider, rec.model_group = d.id, "mock", group.name
        provider = get_provider("mock")
        ctx = self._context(d, call)
        body = self._upstream_body(d, call)
        if call.stream and call.endpoint != EMBED:
            stream = (provider.chat_stream if call.endpoint == CHAT
                      else provider.text_completion_stream)(d, body, ctx)
            return Served(_strip_usage(stream, call.include_usage), d)
        # Guarded like an upstream's reply: a request the adapter cannot answer is no 500.
        return Served(await _guarded(d, _answer(provider, call.endpoint, d, body, ctx)), d)


def _native_for(provider: Provider, d: Deployment, call: Call) -> Native | None:
    """`call.native` when this deployment's adapter speaks its format, else None (chat)."""
    native = call.native
    if native is None:
        return None
    speaks = getattr(provider, "speaks", None)
    return native if speaks is not None and speaks(d, native.kind) else None


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _answer(provider: Provider, endpoint: str, d: Deployment, body: JSON, ctx: CallContext
            ) -> Awaitable[JSON]:
    if endpoint == EMBED:
        return provider.embed(d, body, ctx)
    if endpoint == CHAT:
        return provider.chat(d, body, ctx)
    return provider.text_completion(d, body, ctx)


async def _guarded(d: Deployment, pending: Awaitable[Any], native: Native | None = None
                   ) -> Any:
    """Await an adapter. Adapters raise RequestErrors only; anything else means a reply they
    could not read, which is the upstream's failure (502), not the gateway's. A 404, 403 or
    429 about what the request named is marked as the request's (`RequestError.requested`)."""
    try:
        return await pending
    except (NotFound, PermissionDenied, RateLimited) as exc:
        # A wildcard's model is the client's choice, and upstreams limit each model on its
        # own: its 429 says nothing of the template's other models.
        if d.requested_model or (isinstance(exc, NotFound) and _names_objects(native)):
            exc.requested = True
        raise
    except (RequestError, StopAsyncIteration):
        raise
    except Exception as exc:
        log.warning("unusable reply from %s/%s: %s", d.provider, d.model, type(exc).__name__,
                    exc_info=exc)
        raise UpstreamError(
            f"{d.provider}/{d.model}: the upstream's reply could not be used "
            f"({type(exc).__name__}).") from None


def _names_objects(native: Native | None) -> bool:
    """Whether a request passed through as sent names upstream objects by id (a previous
    response, a conversation), which the upstream may not have: its 404 is then the
    request's. (Files named inside content are not looked for.)"""
    if native is None or native.kind != RESPONSES:
        return False
    body = native.body
    return body.get("previous_response_id") is not None or body.get("conversation") is not None


def _count(d: Deployment, usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and 0 <= value < 2**53):
        raise UpstreamError(
            f"{d.provider}/{d.model}: the upstream's reply has an unusable `usage.{name}`.")
    return int(value)


def _usage(d: Deployment, response: Any, rec: CallRecord) -> int:
    """Record the reply's token usage; returns the tokens to reconcile the reservation with
    (KEEP_RESERVATION when the reply says nothing). An unusable reply is a 502."""
    if not isinstance(response, dict):
        raise UpstreamError(f"{d.provider}/{d.model}: the upstream's reply is not an object.")
    usage = response.get("usage")
    if usage is None:
        return KEEP_RESERVATION
    if not isinstance(usage, Mapping):
        raise UpstreamError(f"{d.provider}/{d.model}: the upstream's `usage` is not an object.")
    rec.prompt_tokens = _count(d, usage, "prompt_tokens")
    rec.completion_tokens = _count(d, usage, "completion_tokens")
    if usage.get("total_tokens") is not None:
        return _count(d, usage, "total_tokens")
    return rec.prompt_tokens + rec.completion_tokens


def _tier_name(p: Principal) -> str | None:
    """The reservation tier a request belongs to: its key's `metadata.priority` (a string, as
    LiteLLM names tiers), else its team's."""
    for record in (p.key, p.team):
        tier = record.metadata.get("priority") if record is not None else None
        if isinstance(tier, str):
            return tier
    return None


def _weighted(prompt: int, completion: int, output_weight: float, share: float) -> int:
    """Fair-share service of a call: input plus weighted output tokens, per unit of share."""
    return max(1, math.ceil((prompt + output_weight * completion) / share))


def _cost(d: Deployment, rec: CallRecord) -> int:
    """What the call cost in nano-USD (recorded in USD for headers, logs and metrics)."""
    cost = call_cost(price_of(d), rec.prompt_tokens, rec.completion_tokens)
    rec.cost = cost / NANO
    return cost


def _check_fits(group: Group, tokens: int) -> None:
    """A request larger than every deployment's tpm could never be admitted: a 400 now,
    instead of heading the line until its timeout."""
    limits = [d.tpm or 0 for d in group.deployments]
    if tokens and limits and all(limits) and tokens > max(limits):
        raise BadRequest(
            f"This request needs about {tokens} tokens (prompt plus max_tokens), more than any "
            f"deployment of model group `{group.name}` allows per minute ({max(limits)}); "
            "shorten it or lower `max_tokens`.",
            param="max_tokens", code="tokens_exceed_limit")


def _drop_all(d: Deployment, default: bool) -> bool:
    """A deployment's own `drop_params: true/false` over the router's (a list names params to
    drop, see `_upstream_body`, and leaves the router's setting for the rest)."""
    own = d.params.get("drop_params")
    return own if isinstance(own, bool) else default


async def _strip_usage(chunks: AsyncIterator[JSON], include_usage: bool) -> AsyncIterator[JSON]:
    async for chunk in chunks:
        if chunk.get("usage") and not include_usage:
            if not chunk.get("choices"):
                continue
            chunk = {**chunk, "usage": None}
        yield chunk


async def _chunks(*head: JSON, rest: AsyncGenerator[JSON, None] | None = None
                  ) -> AsyncIterator[JSON]:
    try:
        for chunk in head:
            yield chunk
        if rest is not None:
            async for chunk in rest:
                yield chunk
    finally:
        if rest is not None:  # closed early (the client left): end the relay now, not at GC
            await rest.aclose()


def _forget(running: set[asyncio.Future[Served]]) -> Callable[[asyncio.Future[Served]], None]:
    def done(task: asyncio.Future[Served]) -> None:
        running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a call whose client left may fail unobserved

    return done
