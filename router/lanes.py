"""Priority admission and waiting.

`Lanes.acquire` asks the state backend to admit a request. When there is no capacity, or
better-ranked requests are waiting, the request waits in its group's line: it sleeps until the
backend wakes it (capacity was released, the request ahead was admitted or left), until the moment
capacity is known to return, or at most `safety_interval` (a safety net, not a poll loop), then
asks again. A per-process renewer keeps the leases of waiting and in-flight requests alive, so
entries of a crashed instance expire within one lease. A request that stops waiting for any
reason (served, timed out, cancelled by a client disconnect) leaves the line in a `finally`.

An admission is an `Attempt`: the slot it holds on one deployment, from admission to exactly one
release (see `Attempt`). `Lanes` is the only place that releases a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

from router.errors import (
    AuthenticationFailed,
    BadRequest,
    ClientDisconnected,
    LeaseLost,
    NotFound,
    PermissionDenied,
    QueueFull,
    RequestError,
    RequestTimeout,
)
from router.state.base import (
    AdmitRequest,
    Admitted,
    Full,
    Kept,
    LineDepth,
    Outcome,
    Refused,
    Release,
    StateBackend,
    TenantAsk,
    TenantEnd,
    TenantReleased,
    TenantShare,
    Waiting,
)

log = logging.getLogger("laneway.lanes")

__all__ = ["Attempt", "Lanes", "TenantHold", "TenantRefusal", "outcome_of"]

LEAVE_WAIT = 0.25
"""Seconds a request that leaves the line waits for the state backend to note it."""

BEHIND_HEAD_LEASES = 10
"""A waiter behind the head checks its place by itself once in this many leases (at most)."""

KEEP_RESERVATION = -1
"""`tokens_used` of an attempt whose real usage is unknown but the upstream did work on it."""


def outcome_of(exc: BaseException) -> Outcome:
    """How an attempt that ended with `exc` counts against its deployment's health."""
    if isinstance(exc, RequestError) and exc.requested:
        return "none"  # what the request named or asked for (RequestError.requested)
    if isinstance(exc, AuthenticationFailed | PermissionDenied | NotFound):
        return "fatal"  # misconfigured deployment: retrying it soon will not help
    if isinstance(exc, BadRequest | ClientDisconnected):
        return "none"  # the request's fault, not the deployment's
    if isinstance(exc, Exception):
        return "fail"  # the upstream failed, or its reply could not be used
    return "none"  # cancelled: the client went away


class TenantRefusal(Exception):
    """A key or team limit refused the request (raised by `Lanes.acquire`, turned into the
    client's error by the caller, which knows the tenant)."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.limit)
        self.refused = refused


class TenantHold:
    """A request's reservation on its key's (and team's) limits and budgets: taken with its
    first admission, kept through waiting, retries and fallbacks, ended exactly once — with
    the request's last successful attempt when it has one (one script), else on its own."""

    __slots__ = ("ask", "confirmed", "deadline", "ended", "held", "pending", "released",
                 "request_id")

    def __init__(self, request_id: str, deadline: float) -> None:
        self.request_id = request_id
        self.deadline = deadline
        self.ask: TenantAsk | None = None
        """What the first admission asked; set by the caller before it."""
        self.held = False
        """The state backend holds the reservation (the first admission got that far)."""
        self.ended = False
        self.released: TenantReleased | None = None
        """What the end reported (spend after it, soft budgets crossed)."""
        self.pending: asyncio.Future[Any] | None = None
        """The end still on its way (a release made after the response, see `Lanes.release`);
        `released` is set once it is done."""
        self.confirmed = 0.0
        """Monotonic time from which the reservation is known to last a lease (see
        `Attempt.check_lease`)."""


class Attempt:
    """One admitted try on one deployment: the slot it holds, from admission to one release.

    Use it as `async with attempt:`. Inside, whoever learns how the call ended says so
    (`succeeded`, `failed`, `gone`); leaving the block releases the slot exactly once, whatever
    raised: an attempt that ends by an exception without a word is released as failed by that
    exception, with its whole token reservation refunded. A stream hands the attempt to its
    relay (`hand_off`), which ends it with `end()` when the stream is over. Only the first
    release counts; later ones do nothing.
    """

    __slots__ = (
        "_handed_off",
        "_lanes",
        "_released",
        "confirmed",
        "cooled",
        "cost",
        "demanded_cooldown",
        "deployment_id",
        "fair_delta",
        "fair_tenant",
        "group",
        "index",
        "keep",
        "latency",
        "outcome",
        "slot_id",
        "started",
        "tenant",
        "tokens_used",
        "waited",
    )

    def __init__(self, lanes: Lanes, req: AdmitRequest, admitted: Admitted, waited: float
                 ) -> None:
        self._lanes = lanes
        self.group = req.group
        self.index = admitted.index
        self.deployment_id = req.candidates[admitted.index].deployment_id
        self.slot_id = req.slot_id
        self.waited = waited
        self.started = time.monotonic()
        self.outcome: Outcome | None = None
        self.tokens_used = 0
        self.latency: float | None = None
        """Seconds to record as the deployment's latency (None: since admission)."""
        self.demanded_cooldown = 0.0
        self.cooled = 0.0
        """Seconds of cooldown the release started (0: none, or not released yet)."""
        self.cost = 0
        """What the call cost (nano-USD), charged to the tenant when it succeeds."""
        self.tenant: TenantHold | None = None
        """The request's tenant reservation, ended with this attempt when it succeeds."""
        self.fair_tenant = req.fair_tenant
        self.fair_delta = 0
        """Real weighted tokens minus the fair-share estimate charged at admission."""
        self.keep: Kept | None = None
        """A value the release of a successful attempt writes (see `Kept`)."""
        self.confirmed = self.started
        """Monotonic time from which the slot is known to last a lease: when the admission
        that granted it (or the last renewal seen to extend it) was sent."""
        self._handed_off = False
        self._released = False

    # -- how it ended ------------------------------------------------------------------------
    def succeeded(self, tokens_used: int, latency: float | None = None, cost: int = 0) -> None:
        """The upstream answered; `tokens_used` reconciles the reservation (-1 keeps it)."""
        self.outcome, self.tokens_used, self.latency, self.cost = (
            "ok", tokens_used, latency, cost)

    def failed(self, exc: BaseException) -> None:
        """The attempt failed with `exc`: full refund, health by the kind of failure."""
        self.outcome, self.tokens_used = outcome_of(exc), 0
        if (isinstance(exc, RequestError) and exc.status == 429 and exc.retry_after
                and not exc.requested):
            self.demanded_cooldown = exc.retry_after

    def gone(self, tokens_used: int = KEEP_RESERVATION) -> None:
        """The client left mid-call: not the deployment's fault, but the upstream worked on
        it, so its reservation stays unless the real usage is known."""
        self.outcome, self.tokens_used = "none", tokens_used

    @property
    def released(self) -> bool:
        return self._released

    def check_lease(self) -> None:
        """Called just before the upstream call starts. An instance that was frozen or starved
        of CPU for longer than a lease may have lost its slot (and its tenant reservation) to
        another instance while it slept: sending now could push the deployment past its limit.
        Such an attempt gives its slot back uncounted and raises `LeaseLost` (the engine asks
        for capacity again; a 503 if it cannot)."""
        now, lease = time.monotonic(), self._lanes.lease
        tenant = self.tenant
        if now - self.confirmed < lease and (
                tenant is None or not tenant.held or now - tenant.confirmed < lease):
            return
        self.outcome, self.tokens_used = "none", 0
        log.warning("an attempt on %s lost its lease (this instance was paused for %.1fs); "
                    "not sending it", self.group, now - self.confirmed)
        raise LeaseLost(
            f"This gateway instance was paused longer than its {lease:g}s lease and may have "
            f"lost its slot on model group `{self.group}`; try again.", retry_after=1.0)

    # -- ownership ---------------------------------------------------------------------------
    def hand_off(self) -> Attempt:
        """Pass the attempt on (to a stream's relay): the `async with` block this is called in
        no longer ends it; the new owner must call `end()`."""
        self._handed_off = True
        return self

    async def __aenter__(self) -> Attempt:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._handed_off:
            await self.end(exc)

    async def end(self, exc: BaseException | None = None) -> float:
        """Record `exc` (unless the outcome is already known) and release; returns the
        cooldown this started, in seconds."""
        if exc is not None and self.outcome is None:
            if isinstance(exc, asyncio.CancelledError | GeneratorExit):
                self.gone()
            else:
                self.failed(exc)
        return await self.release()

    async def release(self) -> float:
        if self._released:
            return 0.0
        self._released = True
        if self.outcome is None:  # ended without a word and without an error: refund it
            self.outcome, self.tokens_used = "none", 0
        self.cooled = await self._lanes.release(self)
        return self.cooled


class Lanes:
    def __init__(
        self,
        state: StateBackend,
        *,
        lease: float = 1.2,
        safety_interval: float = 1.0,
        allowed_fails: int = 3,
        cooldown: float = 5.0,
        max_cooldown: float = 300.0,
    ) -> None:
        self.state = state
        self.lease = lease
        self.safety_interval = safety_interval
        self.allowed_fails = allowed_fails
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.release_in_background = True
        """A successful attempt's release is sent without waiting for its reply, so the
        response does not wait on shared-state bookkeeping. Off where the process may be
        frozen as soon as a response is out (Lambda): there every release is waited for."""
        self._releasing: set[asyncio.Future[Any]] = set()
        self._events: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, set[str]] = defaultdict(set)  # group -> request ids
        # group -> slot -> (attempt, monotonic time after which it is no longer renewed)
        self._slots: dict[str, dict[str, tuple[Attempt, float]]] = defaultdict(dict)
        self._tenant_holds: dict[str, TenantHold] = {}  # request id -> hold
        self._asked: dict[str, float] = {}  # slot id -> when its last admit call was sent
        self._renewer: asyncio.Task[None] | None = None
        self._started_on: asyncio.AbstractEventLoop | None = None



    async def start(self) -> None:
        """Connect to the state backend and subscribe to wake-ups ahead of the first request."""
        await self._ensure_started()

    async def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._started_on is not loop:
            self._started_on = loop
            self._renewer = None
            await self.state.start(self._wake)

    def _wake(self, request_id: str) -> None:
        event = self._events.get(request_id)
        if event is not None:
            event.set()

    # -- admission ---------------------------------------------------------------------------
    async def acquire(
        self,
        req: AdmitRequest,
        deadline: float,
        abandoned: Callable[[], Awaitable[None]] | None = None,
        tenant: TenantHold | None = None,
    ) -> tuple[Admitted, float]:
        """Admit `req`, waiting in line until `deadline` (monotonic). Returns the admission and
        the seconds spent waiting (0.0 when admitted at once). With `req.tenant`, the first
        admission also reserves the tenant's limits for `tenant` (or raises TenantRefusal).

        `abandoned()`, when given, returns once the client has gone away; it is watched only
        while the request waits, so a departed client frees its place at once."""
        await self._ensure_started()
        result = await self._ask(req, deadline)
        if isinstance(result, Refused):
            raise TenantRefusal(result)
        if tenant is not None and req.tenant is not None and not isinstance(result, Full):
            tenant.confirmed = _sent(result, self._asked[req.slot_id])
            self._hold_tenant(tenant)
        if isinstance(result, Admitted):
            return result, 0.0
        if isinstance(result, Full):
            raise _full(req.group, result)
        if req.tenant is not None:
            req = replace(req, tenant=None)  # asked once: later admissions are the group's
        started = time.monotonic()
        event = asyncio.Event()
        self._events[req.request_id] = event
        self._waiting[req.group].add(req.request_id)
        self._ensure_renewer()
        admitted = timed_out = False
        gone = asyncio.ensure_future(abandoned()) if abandoned is not None else None
        if gone is not None:
            gone.add_done_callback(lambda _: event.set())
        try:
            while True:
                if gone is not None and gone.done():
                    raise ClientDisconnected(
                        f"The client left while waiting for model group `{req.group}`.")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout(
                        f"Request timed out after waiting {time.monotonic() - started:.1f}s "
                        f"for capacity on model group `{req.group}`."
                    )
                # Only the head can be admitted next, and it is woken when that may happen; the
                # rest hear when they become the head (the renewal of its instance announces the
                # head again every third of a lease, in case a wake-up was lost), so their
                # safety net is long: thousands of waiters asking every lease would cost Redis
                # more than the line does. Jittered, so that waiters that arrived together do
                # not all check at once.
                safety = self.safety_interval if result.position == 0 else max(
                    self.safety_interval, BEHIND_HEAD_LEASES * self.lease)
                pause = min(remaining, safety * random.uniform(0.75, 1.25))
                if result.retry_in is not None:
                    pause = min(pause, max(result.retry_in, 0.001))
                if not event.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(pause):
                            await event.wait()
                event.clear()
                if deadline - time.monotonic() <= 0:
                    continue
                result = await self._ask(req, deadline)
                if isinstance(result, Admitted):
                    admitted = True
                    return result, time.monotonic() - started
                if isinstance(result, Full):
                    raise _full(req.group, result)
                if isinstance(result, Refused):  # not asked again, so never: for the types
                    raise TenantRefusal(result)
        except RequestTimeout:  # from this loop or from an admit call bounded by the deadline
            timed_out = True
            raise
        finally:
            if gone is not None:
                gone.cancel()
            self._events.pop(req.request_id, None)
            self._waiting[req.group].discard(req.request_id)
            if not admitted:
                # Leave the line even when this task is being cancelled (client went away),
                # but hold the answer back only briefly: when Redis does not answer, the
                # entry's lease runs out by itself.
                leave = asyncio.ensure_future(
                    self.state.cancel(req.group, req.request_id, timed_out))
                leave.add_done_callback(_retrieved)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(leave), LEAVE_WAIT)

    async def _ask(self, req: AdmitRequest, deadline: float
                   ) -> Admitted | Waiting | Full | Refused:
        """One admit call, bounded by the request's deadline (a slow Redis must not keep a
        request past its own timeout), noting when it was sent (see `Attempt.check_lease`)."""
        self._asked[req.slot_id] = time.monotonic()
        pending = asyncio.ensure_future(self.state.admit(req))
        try:
            async with asyncio.timeout(deadline - time.monotonic()) as bound:
                return await asyncio.shield(pending)
        except TimeoutError:
            if not bound.expired():
                raise
            # The call may still be answered, admitting a request nobody waits for: whatever
            # it reserves is given back as soon as it arrives.
            pending.add_done_callback(lambda done: self._undo_late(req, done))
            raise RequestTimeout(
                f"Request timed out waiting for the shared state of model group "
                f"`{req.group}`.") from None
        except BaseException:
            pending.add_done_callback(lambda done: self._undo_late(req, done))
            raise

    def _undo_late(self, req: AdmitRequest, done: asyncio.Future[Any]) -> None:
        """Give back what an admission answered after its request stopped waiting reserved."""
        if done.cancelled() or done.exception() is not None:
            return
        result = done.result()
        undo: list[Awaitable[Any]] = []
        if isinstance(result, Admitted):
            dep = req.candidates[result.index].deployment_id
            undo.append(self.state.release(Release(req.group, dep, req.slot_id, tokens_used=0,
                                                   outcome="none")))
        elif isinstance(result, Waiting):
            undo.append(self.state.cancel(req.group, req.request_id))
        if req.tenant is not None and isinstance(result, Admitted | Waiting):
            undo.append(self.state.tenant_release(TenantEnd(req.tenant, req.request_id, 0, 0)))
        for step in undo:
            asyncio.ensure_future(step).add_done_callback(_retrieved)

    async def admit(
        self,
        req: AdmitRequest,
        deadline: float,
        abandoned: Callable[[], Awaitable[None]] | None = None,
        tenant: TenantHold | None = None,
    ) -> Attempt:
        """Admit `req` (waiting in line as `acquire` does) and hold its slot: the returned
        attempt's lease is renewed until it is released, and at the latest until a lease
        after `deadline`, so that even an attempt nobody ends frees its slot by itself."""
        try:
            admitted, waited = await self.acquire(req, deadline, abandoned, tenant)
            attempt = Attempt(self, req, admitted, waited)
            attempt.confirmed = _sent(admitted, self._asked[req.slot_id])
        finally:
            self._asked.pop(req.slot_id, None)
        attempt.tenant = tenant
        self._slots[req.group][req.slot_id] = (attempt, deadline + self.lease)
        self._ensure_renewer()
        return attempt

    async def release(self, attempt: Attempt) -> float:
        """The one place a slot is released (through `Attempt.release`). A state backend that
        cannot be reached now does not turn a finished call into an error: the slot is no
        longer renewed, so it frees itself within one lease."""
        self._slots[attempt.group].pop(attempt.slot_id, None)
        latency = attempt.latency
        if latency is None:
            latency = time.monotonic() - attempt.started
        release = Release(
            group=attempt.group,
            deployment_id=attempt.deployment_id,
            slot_id=attempt.slot_id,
            tokens_used=attempt.tokens_used,
            latency_ms=latency * 1000,
            outcome=attempt.outcome or "none",
            allowed_fails=self.allowed_fails,
            cooldown=self.cooldown,
            demanded_cooldown=self._capped(attempt.demanded_cooldown),
            fair_tenant=attempt.fair_tenant,
            fair_delta=attempt.fair_delta if attempt.outcome == "ok" else 0,
            keep=attempt.keep if attempt.outcome == "ok" else None,
        )
        hold = attempt.tenant
        end: TenantEnd | None = None
        if hold is not None and attempt.outcome == "ok" and hold.held and not hold.ended:
            # The request's last attempt: its tenant ends with it, in the same script.
            hold.ended = True
            self._tenant_holds.pop(hold.request_id, None)
            assert hold.ask is not None
            end = TenantEnd(hold.ask, hold.request_id, attempt.tokens_used, attempt.cost)
        try:
            sent = self.state.release_now(release, end)
        except Exception as exc:
            return _release_failed(attempt, exc)
        ends = hold if end is not None else None
        if asyncio.isfuture(sent) and sent.done() and sent.exception() is None:
            return self._settled(sent.result(), ends)  # done already (the in-process backend)
        done = self._released(sent, ends, attempt)
        if self.release_in_background and attempt.outcome == "ok" and not (
                release.demanded_cooldown or release.keep):
            # Nothing the caller needs comes back (a success starts no cooldown), and the
            # script is already written: anything this instance sends later comes after it.
            # A kept value is waited for: the client may ask another instance for it next.
            task = asyncio.ensure_future(done)
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)
            if end is not None and hold is not None:
                hold.pending = task
            return 0.0
        return await asyncio.shield(done)

    async def _released(self, sent: Awaitable[tuple[float, TenantReleased | None]],
                        hold: TenantHold | None, attempt: Attempt) -> float:
        try:
            result = await sent
        except Exception as exc:
            return _release_failed(attempt, exc)
        return self._settled(result, hold)

    @staticmethod
    def _settled(result: tuple[float, TenantReleased | None], hold: TenantHold | None) -> float:
        cooled, released = result
        if hold is not None:
            hold.released = released
        return cooled

    async def drain(self) -> None:
        """Wait for the releases still on their way (shutting down)."""
        while self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)

    def _hold_tenant(self, hold: TenantHold) -> None:
        hold.held = True
        self._tenant_holds[hold.request_id] = hold
        self._ensure_renewer()

    async def end_tenant(self, hold: TenantHold, tokens_used: int = 0, cost: int = 0
                         ) -> TenantReleased | None:
        """End a request's tenant reservation on its own (the request failed, timed out or
        left). The one place besides `release` that ends one; only the first call counts."""
        if not hold.held or hold.ended:
            return hold.released
        hold.ended = True
        self._tenant_holds.pop(hold.request_id, None)
        assert hold.ask is not None
        try:
            hold.released = await asyncio.shield(self.state.tenant_release(
                TenantEnd(hold.ask, hold.request_id, tokens_used, cost)))
        except Exception as exc:
            log.warning("ending a tenant reservation failed (%s); its lease runs out by itself",
                        type(exc).__name__)
        return hold.released

    def _capped(self, demanded: float) -> float:
        """An upstream's Retry-After, kept finite and within `max_cooldown`."""
        if not math.isfinite(demanded) or demanded <= 0:
            return self.max_cooldown if demanded == math.inf else 0.0
        return min(demanded, self.max_cooldown)

    # -- leases ------------------------------------------------------------------------------

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        # Rounds keep their schedule (one every third of a lease, however long a round's calls
        # take), and a round's calls go out together: one slow group does not hold back the
        # renewals of the others, nor the next round.
        period = self.lease / 3
        loop = asyncio.get_running_loop()
        due = loop.time()
        rounds: set[asyncio.Task[None]] = set()
        try:
            while any(self._waiting.values()) or any(self._slots.values()) or self._tenant_holds:
                due = max(due + period, loop.time())
                await asyncio.sleep(due - loop.time())
                task = loop.create_task(self._renew_round())
                rounds.add(task)
                task.add_done_callback(rounds.discard)
        finally:
            for task in rounds:
                task.cancel()

    async def _renew_round(self) -> None:
        now = time.monotonic()
        groups = set(self._waiting) | set(self._slots)
        # Each call catches its own failure.
        await asyncio.gather(self._renew_tenants(now), *(self._renew_group(g, now) for g in groups))

    async def _renew_group(self, group: str, now: float) -> None:
        waiters = list(self._waiting.get(group, ()))
        held = self._slots.get(group, {})
        for slot in [s for s, (_, until) in held.items() if until < now]:
            # Held past its request's deadline: a bug left it unreleased. Stop renewing it, so
            # the fleet gets the capacity back within a lease.
            log.error("slot %s of %s was never released; letting its lease expire", slot, group)
            del held[slot]
        attempts = [a for a, _ in held.values()]
        if not waiters and not attempts:
            self._waiting.pop(group, None)
            self._slots.pop(group, None)
            return
        sent = time.monotonic()
        try:
            lost = await self.state.renew(
                group, waiters, [(a.deployment_id, a.slot_id) for a in attempts], self.lease)
        except Exception as exc:  # the next round tries again
            log.debug("lease renewal failed for %s: %s", group, type(exc).__name__)
            return
        _confirm(attempts, sent, self.lease)
        # A waiter admitted or gone while the renewal was on its way is not lost.
        lost = [rid for rid in lost if rid in self._waiting.get(group, ())]
        if lost:  # ask again at once: they re-enter the line
            log.warning("%d waiters of %s had lost their place in line (this instance did not "
                        "renew for a lease); they join it again", len(lost), group)
        for rid in lost:
            self._wake(rid)

    async def _renew_tenants(self, now: float) -> None:
        """One call per tenant per period for all of this instance's requests of it."""
        by_tenant: dict[tuple[str, tuple[str, ...]], list[TenantHold]] = defaultdict(list)
        for rid, hold in list(self._tenant_holds.items()):
            if hold.deadline + self.lease < now:  # never ended: a bug; let the lease run out
                log.error("tenant reservation of %s was never ended", rid)
                del self._tenant_holds[rid]
            elif hold.ask is not None:
                by_tenant[(hold.ask.tag, tuple(e.name for e in hold.ask.entities))].append(hold)
        for holds in by_tenant.values():
            ask = holds[0].ask
            assert ask is not None
            sent = time.monotonic()
            try:
                await self.state.tenant_renew(ask, [h.request_id for h in holds], self.lease)
            except Exception as exc:  # the next round tries again
                log.debug("tenant lease renewal failed: %s", type(exc).__name__)
            else:
                _confirm(holds, sent, self.lease)

    async def depth(self, group: str) -> list[LineDepth]:
        return await self.state.line(group)

    async def shares(self, group: str) -> list[TenantShare]:
        """Each fair-share tenant's waiting requests and served share in `group`."""
        return await self.state.shares(group)


def _sent(result: Admitted | Waiting | Refused, asked: float) -> float:
    return max(asked, result.sent or 0.0) if isinstance(result, Admitted) else asked


def _retrieved(task: asyncio.Future[bool]) -> None:
    if not task.cancelled():
        task.exception()  # a failed leave is logged by the state backend; nothing to add


def _confirm(holders: list[Attempt] | list[TenantHold], sent: float, lease: float) -> None:
    """A renewal sent at `sent` has answered. The script renews only entries that still exist,
    so it proves a lease only for holders whose previous lease had not run out when its answer
    came: it ran before that moment."""
    now = time.monotonic()
    for holder in holders:
        if now - holder.confirmed < lease:
            holder.confirmed = sent


def _full(group: str, full: Full) -> QueueFull:
    retry_after = max(1.0, round(full.retry_in)) if full.retry_in is not None else 1.0
    return QueueFull(
        f"The queue for model group `{group}` is full ({full.depth} waiting); "
        f"retry after {retry_after:.0f}s.",
        retry_after=retry_after,
    )


def _release_failed(attempt: Attempt, exc: Exception) -> float:
    """A state backend that cannot be reached now does not turn a finished call into an
    error: the slot is no longer renewed, so it frees itself within one lease."""
    log.warning("releasing a slot of %s failed (%s); its lease runs out by itself",
                attempt.group, type(exc).__name__)
    return 0.0
