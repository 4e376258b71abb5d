"""One request against one model group: admission, the upstream call, retries with backoff,
and the release that reconciles tokens, records the outcome and wakes the next waiter."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from router.errors import (
    AuthenticationFailed,
    BadRequest,
    NotFound,
    PermissionDenied,
    QueueFull,
    RateLimited,
    RequestError,
    RequestTimeout,
)
from router.groups import Deployment, Group
from router.lanes import Lanes
from router.options import RouterOptions
from router.providers.base import JSON, CallContext
from router.providers.catalog import get_provider
from router.records import CallRecord
from router.state.base import AdmitRequest, Candidate, Release
from router.strategies import Strategy

__all__ = ["Call", "Dispatcher", "Served"]

CHAT, TEXT, EMBED = "chat", "text", "embed"


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
    stream: bool = False
    include_usage: bool = False
    tokens: int | None = None
    """Tokens to reserve; estimated on first need."""
    abandoned: Callable[[], Awaitable[None]] | None = None
    """Returns once the client has gone away (watched while the request waits in line)."""
    force_queue: bool = False
    """Wait in line even where the group's `max_queue_size` is 0 (the /queue/ routes)."""
    mock_response: Any = None
    """A request-level `mock_response`: admitted like any call, answered by the mock adapter."""


@dataclass(slots=True)
class Served:
    """A successful call: the response (or stream) and the deployment that served it."""

    response: JSON | AsyncIterator[JSON]
    deployment: Deployment


def _outcome(exc: RequestError) -> str:
    """How a failure counts against the deployment that produced it."""
    if isinstance(exc, AuthenticationFailed | PermissionDenied | NotFound):
        return "fatal"  # misconfigured deployment: retrying it soon will not help
    if isinstance(exc, BadRequest):
        return "none"  # the request's fault, not the deployment's
    return "fail"


class Dispatcher:
    def __init__(
        self,
        lanes: Lanes,
        strategy: Strategy,
        options: RouterOptions,
        http: Callable[[], Any],
        estimate: Callable[[Deployment, Call], int],
    ) -> None:
        self.lanes = lanes
        self.strategy = strategy
        self.options = options
        self._http = http
        self._estimate = estimate
        self._running: set[asyncio.Future[Served]] = set()

    def _candidate(self, d: Deployment) -> Candidate:
        par = d.max_parallel_requests or self.options.default_max_parallel_requests or 0
        return Candidate(d.id, d.rpm or 0, d.tpm or 0, par)

    async def run(self, group: Group, call: Call) -> Served:
        """Serve `call` from `group`, retrying on other deployments (or after a pause)."""
        failed: set[str] = set()
        attempt = 0
        while True:
            attempt += 1
            candidates = self.strategy.arrange(group.deployments, failed)
            if (call.tokens is None and any(d.tpm for d in candidates)) or (
                call.tokens is None and self.strategy.order == "usage"
            ):
                call.tokens = self._estimate(candidates[0], call)
            lim = self.options.queue_limits(group.name, call.priority)
            req = AdmitRequest(
                group=group.name,
                request_id=call.record.request_id,
                slot_id=f"{call.record.request_id}.{attempt}",
                priority=call.priority,
                tokens=call.tokens or 0,
                candidates=[self._candidate(d) for d in candidates],
                order=self.strategy.order,
                lease=self.options.queue_lease,
                max_waiting=-1 if call.force_queue and lim[0] == 0 else lim[0],
                max_waiting_priority=lim[1],
                retry=attempt > 1,
                latency_buffer=self.strategy.latency_buffer,
            )
            try:
                admitted, waited = await self.lanes.acquire(req, call.deadline, call.abandoned)
            except QueueFull as exc:
                if req.max_waiting == 0:  # waiting is switched off: plain rate limiting
                    raise RateLimited(
                        f"No capacity left on model group `{group.name}`; "
                        f"retry after {exc.retry_after:.0f}s.",
                        retry_after=exc.retry_after,
                    ) from None
                raise
            if waited:
                call.record.queued = True
                call.record.queue_seconds += waited
            deployment = candidates[admitted.index]
            try:
                return await self._attempt(deployment, group, call, req.slot_id)
            except RequestError as exc:
                if not exc.retryable or attempt > self.options.num_retries:
                    raise
                failed.add(deployment.id)
                call.record.retries += 1
                await self._pause(exc, attempt, group, failed, call)

    async def _pause(
        self, exc: RequestError, attempt: int, group: Group, failed: set[str], call: Call
    ) -> None:
        """Back off before retrying when no untried deployment is left."""
        if any(d.id not in failed for d in group.deployments):
            return
        base = max(self.options.retry_after, 0.1 * 2 ** (attempt - 1))
        pause = max(base * (0.5 + random.random()), exc.retry_after or 0.0)
        remaining = call.deadline - time.monotonic()
        if pause >= remaining:
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
            drop_params=self.options.drop_params,
            request_id=call.record.request_id,
        )

    def _upstream_body(self, d: Deployment, call: Call) -> JSON:
        body = {**d.defaults, **call.body, "model": d.model} if d.defaults else {
            **call.body, "model": d.model}
        return body

    async def _attempt(self, d: Deployment, group: Group, call: Call, slot: str) -> Served:
        if call.mock_response is not None:
            d = replace(d, provider="mock", mock_response=call.mock_response)
        provider = get_provider(d.provider)
        rec = call.record
        rec.deployment_id, rec.provider, rec.model_group = d.id, d.provider, group.name
        # The slot's lease is renewed for as long as the call runs, however long that is.
        self.lanes.hold(group.name, d.id, slot)
        try:
            ctx = self._context(d, call)
        except RequestError as exc:
            await self._release(group, d, slot, time.monotonic(), exc=exc, rec=rec)
            raise
        body = self._upstream_body(d, call)
        if call.stream and call.endpoint != EMBED:
            return await self._open_stream(provider, d, group, call, slot, body, ctx)
        # If the client goes away, the upstream still works on the call (a non-streamed answer
        # is generated anyway), so the call runs on and keeps its slot until the upstream
        # answers: the upstream never sees more calls at once than the limit allows.
        task = asyncio.ensure_future(self._complete(provider, d, group, call, slot, body, ctx))
        self._running.add(task)
        task.add_done_callback(_forget(self._running))
        return await asyncio.shield(task)

    async def _complete(
        self, provider: Any, d: Deployment, group: Group, call: Call, slot: str,
        body: JSON, ctx: CallContext,
    ) -> Served:
        rec = call.record
        started = time.monotonic()
        try:
            if call.endpoint == EMBED:
                response = await provider.embed(d, body, ctx)
            elif call.endpoint == CHAT:
                response = await provider.chat(d, body, ctx)
            else:
                response = await provider.text_completion(d, body, ctx)
        except RequestError as exc:
            rec.upstream_seconds += time.monotonic() - started
            await self._release(group, d, slot, started, exc=exc, rec=rec)
            raise
        except BaseException:
            rec.upstream_seconds += time.monotonic() - started
            await self._release(group, d, slot, started, outcome="none")
            raise
        usage = response.get("usage") or {}
        rec.prompt_tokens = int(usage.get("prompt_tokens") or 0)
        rec.completion_tokens = int(usage.get("completion_tokens") or 0)
        # Summed over attempts, so that time outside upstream calls is laneway's own.
        rec.upstream_seconds += time.monotonic() - started
        await self._release(group, d, slot, started, used=_total(usage), rec=rec)
        return Served(response, d)

    async def _open_stream(
        self, provider: Any, d: Deployment, group: Group, call: Call, slot: str,
        body: JSON, ctx: CallContext,
    ) -> Served:
        """Start the upstream stream and wait for its first chunk, so that failures before any
        byte reached the client can still be retried, fall back, or get their own status."""
        started = time.monotonic()
        chunks = (provider.chat_stream if call.endpoint == CHAT
                  else provider.text_completion_stream)(d, body, ctx)
        try:
            try:
                async with asyncio.timeout(ctx.timeout):
                    first = await anext(chunks)
            except StopAsyncIteration:
                first = None
            except TimeoutError:
                raise RequestTimeout(
                    f"No response from the upstream within {ctx.timeout:.0f}s."
                ) from None
        except RequestError as exc:
            await chunks.aclose()
            call.record.upstream_seconds += time.monotonic() - started
            await self._release(group, d, slot, started, exc=exc, rec=call.record)
            raise
        except BaseException:
            await chunks.aclose()
            call.record.upstream_seconds += time.monotonic() - started
            await self._release(group, d, slot, started, outcome="none")
            raise
        call.record.time_to_first_token = time.monotonic() - started
        call.record.upstream_seconds += call.record.time_to_first_token
        relay = self._relay(first, chunks, d, group, call, slot, started)
        # Start the relay now: a started async generator that is dropped unread (the client
        # left before the first byte) is closed by the event loop, which runs its `finally`
        # and so releases the slot. One never started would keep it forever.
        try:
            head = await anext(relay)
        except StopAsyncIteration:
            return Served(_chunks(), d)
        return Served(_chunks(head, rest=relay), d)

    async def _relay(
        self, first: JSON | None, chunks: AsyncGenerator[JSON, None], d: Deployment,
        group: Group,
        call: Call, slot: str, started: float,
    ) -> AsyncIterator[JSON]:
        rec = call.record
        gap = d.stream_timeout or self.options.stream_timeout
        usage: dict[str, Any] = {}
        outcome, error = "ok", None
        try:
            pending = [first] if first is not None else []
            while True:
                if pending:
                    chunk = pending.pop()
                else:
                    try:
                        if gap:
                            async with asyncio.timeout(gap):
                                chunk = await anext(chunks)
                        else:  # the read timeout of the upstream call still applies
                            chunk = await anext(chunks)
                    except StopAsyncIteration:
                        break
                if chunk.get("usage"):
                    usage = chunk["usage"]
                    if not call.include_usage:
                        if chunk.get("choices"):
                            chunk = {**chunk, "usage": None}
                        else:
                            continue
                yield chunk
        except RequestError as exc:
            outcome, error = _outcome(exc), exc
            raise
        except TimeoutError:
            outcome = "fail"
            raise RequestTimeout("The upstream stream stalled.") from None
        except BaseException:
            outcome = "none"  # the client went away
            raise
        finally:
            await chunks.aclose()
            rec.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            rec.completion_tokens = int(usage.get("completion_tokens") or 0)
            rec.upstream_seconds += time.monotonic() - started - (rec.time_to_first_token or 0.0)
            await asyncio.shield(self._release(
                group, d, slot, started, used=_total(usage) if usage else -1,
                outcome=outcome, exc=error,
                latency=rec.time_to_first_token, rec=rec,
            ))

    async def _release(
        self,
        group: Group,
        d: Deployment,
        slot: str,
        started: float,
        *,
        used: int = -1,
        outcome: str = "ok",
        exc: RequestError | None = None,
        latency: float | None = None,
        rec: CallRecord | None = None,
    ) -> None:
        self.lanes.drop(group.name, slot)
        demanded = 0.0
        if exc is not None:
            outcome = _outcome(exc)
            if exc.status == 429 and exc.retry_after:
                demanded = exc.retry_after
        elapsed = latency if latency is not None else time.monotonic() - started
        cooled = await self.lanes.state.release(
            Release(
                group=group.name,
                deployment_id=d.id,
                slot_id=slot,
                tokens_used=used,
                latency_ms=elapsed * 1000,
                outcome=outcome,  # type: ignore[arg-type]
                allowed_fails=self.options.allowed_fails,
                cooldown=self.options.cooldown_time,
                demanded_cooldown=demanded,
            )
        )
        if cooled and rec is not None:
            rec.cooldowns.append(d.id)


async def _chunks(*head: JSON, rest: AsyncIterator[JSON] | None = None) -> AsyncIterator[JSON]:
    for chunk in head:
        yield chunk
    if rest is not None:
        async for chunk in rest:
            yield chunk


def _forget(running: set[asyncio.Future[Served]]) -> Callable[[asyncio.Future[Served]], None]:
    def done(task: asyncio.Future[Served]) -> None:
        running.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a call whose client left may fail unobserved

    return done


def _total(usage: JSON) -> int:
    total = usage.get("total_tokens")
    if total is None:
        total = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
    return int(total)
