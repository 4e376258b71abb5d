"""The shared-state operations the engine uses, and their results.

Every operation is atomic: in Redis one Lua script, in process one synchronous function (the
event loop never switches inside it). Both backends pass the same contract tests
(tests/state/test_contract.py). The engine never reads or writes state any other way.

Wake-ups: when capacity may have come back for the head of a line, the backend calls the
`on_wake(request_id)` callback given to `start()`; only the instance holding that waiter reacts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "Admitted",
    "Candidate",
    "DeploymentUsage",
    "DeploymentView",
    "Full",
    "GroupView",
    "Kept",
    "LineDepth",
    "Order",
    "Outcome",
    "Refused",
    "StateBackend",
    "TenantAsk",
    "TenantEnd",
    "TenantEntity",
    "TenantReleased",
    "TenantShare",
    "TenantUsage",
    "Waiting",
    "slot_tier",
    "tier_slot",
]

Order = Literal["given", "least-busy", "usage", "latency"]
Outcome = Literal["ok", "fail", "fatal", "none"]
WakeCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A deployment the request may use, with its limits (0 = unlimited)."""

    deployment_id: str
    rpm: int = 0
    tpm: int = 0
    max_parallel: int = 0


@dataclass(frozen=True, slots=True)
class Admitted:
    index: int
    """Position of the chosen deployment in the candidates passed to `admit`."""
    sent: float | None = None
    """When (time.monotonic()) the call that admitted it was sent, if later than the caller
    asked: fail-open answers from process memory after Redis failed to."""


@dataclass(frozen=True, slots=True)
class Waiting:
    position: int
    """0 is the head of the line."""
    retry_in: float | None
    """Seconds until capacity is known to return (head only), None when unknown."""


@dataclass(frozen=True, slots=True)
class Full:
    depth: int
    retry_in: float | None
    """Estimated seconds until the line drains enough to take one more."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A tenant (key or team) limit refuses the request; nothing was reserved."""

    limit: str
    """"rpm", "tpm", "parallel", "budget", "model_rpm" or "model_tpm"."""
    entity: int
    """0: the key's limit, 1: its team's."""
    retry_in: float | None
    """Seconds until the limit may let it pass; None when unknown."""


REFUSAL_CODES = ("", "rpm", "tpm", "parallel", "budget", "model_rpm", "model_tpm")


@dataclass(frozen=True, slots=True)
class TenantEntity:
    """One key or team as the admission scripts see it: its counters' name and its limits
    (0 = none; budgets in nano-USD, -1 = none)."""

    name: str
    """"key:<sha256>" or "team:<id>"."""
    rpm: int = 0
    tpm: int = 0
    parallel: int = 0
    model_rpm: int = 0
    model_tpm: int = 0
    budget: int = -1
    soft_budget: int = -1
    period_ms: int = 0
    """Budget period: spend starts again at zero after it (0 = never)."""


@dataclass(frozen=True, slots=True)
class TenantAsk:
    """What a request asks of its tenant, held from its first admission to its end."""

    tag: str
    """The hash tag all of the tenant's counters share (its team, or the key alone)."""
    entities: tuple[TenantEntity, ...]
    """The key, then its team when it has one."""
    group: str
    """The model group the request was made for (per-model limits)."""
    cost: int = 0
    """Nano-USD reserved against the budgets: the most the call can cost."""


@dataclass(frozen=True, slots=True)
class TenantEnd:
    """A request's end for its tenant: real usage and cost replace the reservation."""

    ask: TenantAsk
    request_id: str
    tokens_used: int = -1
    """-1 keeps the token reservation (the usage is unknown)."""
    cost: int = 0
    undo: bool = False
    """Take the reservation back as if it never was (the request's line was full)."""


@dataclass(frozen=True, slots=True)
class TenantReleased:
    soft_crossed: tuple[int, ...] = ()
    """Entities (0 key, 1 team) whose spend just crossed their soft budget (a call that
    reserved and cost nothing crosses none)."""


@dataclass(frozen=True, slots=True)
class TenantUsage:
    requests: int
    tokens: int
    in_flight: int
    spent: int
    """nano-USD spent in the current period."""
    reserved: int
    period_start: float
    """Unix time the current budget period began."""


@dataclass(frozen=True, slots=True)
class LineDepth:
    priority: int
    count: int
    oldest_wait: float
    """Seconds the head of this priority has been waiting: its oldest waiter when the line is
    ordered by arrival (with fair share, an older request of another tenant may be behind)."""


@dataclass(frozen=True, slots=True)
class TenantShare:
    """One fair-share tenant of a group: its waiting requests and the service it received
    since the group's fair-share clock last started (it starts again after the group has been
    idle for a few leases)."""

    tenant: str
    """"k:<key hash prefix>", "t:<team id>", "u:<user>", "-" (master key, anonymous), or
    "other" for every tenant past the SHARE_LABELS largest."""
    waiting: int
    served: int
    """Weighted tokens (input + weight * output), divided by the tenant's fair_share_weight."""
    share: float
    """served / the group's total served (0 when nothing was served yet)."""


SHARE_LABELS = 20
"""Tenants reported per group (by service received); the rest are summed as "other", so the
label set of the metrics stays bounded."""


def top_shares(rows: Sequence[tuple[str, int, int]]) -> list[TenantShare]:
    """(tenant, waiting, served) rows → the SHARE_LABELS most served tenants (then those
    waiting most), the rest folded into "other"."""
    ranked = sorted(rows, key=lambda r: (-r[2], -r[1], r[0]))
    total = sum(r[2] for r in ranked)
    if len(ranked) > SHARE_LABELS:
        rest = ranked[SHARE_LABELS - 1:]
        ranked = [*ranked[:SHARE_LABELS - 1],
                  ("other", sum(r[1] for r in rest), sum(r[2] for r in rest))]
    return [TenantShare(t, w, s, s / total if total else 0.0) for t, w, s in ranked]


@dataclass(frozen=True, slots=True)
class DeploymentUsage:
    """What one deployment holds right now: the numbers that must return to zero when no
    request is in flight and every failed attempt was refunded."""

    deployment_id: str
    requests: int
    """Admissions in the last 60 s (the rpm window)."""
    tokens: int
    """Tokens reserved or used in the last 60 s (the tpm window)."""
    in_flight: int
    """Slots whose lease has not run out."""
    cooldown: float
    """Seconds of cooldown left, 0 when none."""


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """One deployment as the dashboard shows it (read only, fleet-wide)."""

    deployment_id: str
    requests: int
    """Admissions in the last 60 s."""
    tokens: int
    """Tokens reserved or used in the last 60 s."""
    in_flight: int
    cooldown: float
    """Seconds of cooldown left, 0 when none."""
    cooldown_reason: str
    """Why the latest cooldown started: "retry-after" (the upstream asked), "fatal" (an error
    that retrying cannot fix) or "failures" (allowed_fails reached); "" when unknown."""
    failures: int
    """Failed attempts counted towards the next cooldown (last 60 s)."""
    latency_ms: float | None
    """The latency average routing uses (an EWMA of successful calls), None before one."""
    attempts: int = 0
    """Attempts that ended (succeeded or failed) this minute and the last, fleet-wide."""
    failed: int = 0
    """Of those, the failed ones."""
    latency_buckets: tuple[int, ...] = ()
    """Successful attempts of this minute and the last by latency: bucket b holds
    [2^b, 2^(b+1)) ms (the first also below 1 ms, the last also above); LATENCY_BUCKETS."""


LATENCY_BUCKETS = 16


@dataclass(frozen=True, slots=True)
class TierView:
    """A reservation tier's part of its group (router_settings.priority_reservation), summed
    over the group's deployments: read only, for the dashboard and /queue/status."""

    tier: str
    waiting: int
    """Live waiters of the tier (counted among the first 1,000 of its index of the line)."""
    in_flight: int
    requests: int
    """Its admissions in the last 60 s."""
    tokens: int
    """Its tokens reserved or used in the last 60 s."""


@dataclass(frozen=True, slots=True)
class GroupView:
    """A model group's line and deployments, read in one atomic call (the dashboard)."""

    lines: list[LineDepth]
    waiting_by_tenant: dict[str, int]
    """Waiters per fair-share tenant ("k:<key hash prefix>", "t:<team>", "u:<user>", "-")."""
    deployments: list[DeploymentView]
    rejected: int = 0
    """Requests refused because the line was full (429), this minute and the last."""
    timed_out: int = 0
    """Waiters whose timeout ran out in line (408), this minute and the last."""
    tiers: tuple[TierView, ...] = ()
    """Per reservation tier asked for, in the order asked."""


def tier_slot(tier: str, slot: str) -> str:
    """The slot id of an attempt of reservation tier `tier` (`slot` holds no "|"): each
    deployment counts its tier's use by it (lua/capacity.lua)."""
    return f"{tier}|{slot}"


def slot_tier(slot: str) -> str | None:
    """The tier a slot id names (`tier_slot`), None when it names none."""
    tier, sep, _ = slot.rpartition("|")
    return tier if sep else None


@dataclass(frozen=True, slots=True)
class AdmitRequest:
    group: str
    request_id: str
    slot_id: str
    """Unique per attempt: the member of the deployment's windows. In a group with `tiers`,
    `tier_slot(<the request's tier>, ...)`, so that each tier's share is held for it."""
    priority: int
    tokens: int
    candidates: Sequence[Candidate]
    order: Order = "given"
    lease: float = 5.0
    max_waiting: int = -1
    """-1: unlimited; 0: never wait (answer Full at once when there is no capacity)."""
    max_waiting_priority: int = -1
    retry: bool = False
    rnd: float = 0.0
    latency_buffer: float = 0.0
    tenant: TenantAsk | None = None
    """The request's first admission also checks and reserves its tenant's limits, atomically
    with the group's admission where both live on one node."""
    fair_tenant: str = ""
    """Fair share: whose request this is ('' orders the priority's line by arrival)."""
    fair_cost: int = 1
    """Its weighted tokens (input + weight * output, divided by the tenant's share weight)."""
    aging: float = 0.0
    """Seconds after which a waiter moves ahead of every priority (0 = strict priority)."""
    tiers: tuple[tuple[str, float], ...] = ()
    """Reservation tiers of the group: (name, share of each deployment's rpm, tpm and parallel
    slots); () = none."""
    tier: int = 0
    """The request's tier: an index into `tiers`."""


@dataclass(slots=True, eq=False)
class Kept:
    """A value written with a release, in its script (a stored Responses conversation): the
    reply that made it and the record of it go to shared state in one round trip. `landed` is
    set by the backend that wrote it; a backend that cannot (fail-open, Redis away) leaves it
    False and the caller writes it the slow way."""

    key: str
    value: bytes
    ttl_ms: int
    landed: bool = False


@dataclass(frozen=True, slots=True)
class Release:
    group: str
    deployment_id: str
    slot_id: str
    tokens_used: int = -1
    """Tokens really used: 0 refunds the whole reservation, -1 keeps it as reserved."""
    latency_ms: float = -1.0
    outcome: Outcome = "ok"
    allowed_fails: int = 3
    cooldown: float = 5.0
    demanded_cooldown: float = 0.0
    """Seconds the upstream asked us to stay away (Retry-After on a 429)."""
    fair_tenant: str = ""
    fair_delta: int = 0
    """Real weighted tokens minus the estimate the request was charged at admission."""
    keep: Kept | None = None
    """A value to store with this release (see `Kept`)."""


class StateBackend(Protocol):
    name: str

    async def start(self, on_wake: WakeCallback) -> None:
        """Begin delivering wake-ups. Idempotent."""

    async def close(self) -> None: ...

    async def admit(self, req: AdmitRequest) -> Admitted | Waiting | Full | Refused: ...

    async def release(self, rel: Release) -> float:
        """End an attempt; returns the cooldown started (seconds), 0 when none."""

    async def release_with_tenant(self, rel: Release, end: TenantEnd
                                  ) -> tuple[float, TenantReleased]:
        """End a request's last attempt and its tenant reservation together."""

    def release_now(self, rel: Release, end: TenantEnd | None = None
                    ) -> Awaitable[tuple[float, TenantReleased | None]]:
        """`release` (with `end`: `release_with_tenant`) sent before this returns, so that
        any later call of this instance comes after it; awaiting the result is optional."""

    async def tenant_release(self, end: TenantEnd) -> TenantReleased:
        """End a request's tenant reservation (it left the line, or its last attempt failed)."""

    async def tenant_renew(self, ask: TenantAsk, request_ids: Sequence[str], lease: float
                           ) -> None:
        """Extend the parallel-slot leases of these requests of one tenant."""

    async def tenant_usage(self, tag: str, entity: TenantEntity) -> TenantUsage: ...

    async def tenant_set_spend(self, tag: str, entity: TenantEntity, spent: int) -> None:
        """Set what a key or team spent this period (nano-USD): restoring a backup."""

    async def cancel(self, group: str, request_id: str, timed_out: bool = False) -> bool:
        """Remove a waiter; True when it was in the line. `timed_out`: it leaves because its
        timeout ran out (counted for the dashboard)."""

    async def renew(
        self,
        group: str,
        waiters: Sequence[str],
        slots: Sequence[tuple[str, str]],
        lease: float,
    ) -> list[str]:
        """Extend leases of waiters and of in-flight (deployment id, slot id) pairs.

        Returns the waiters that had already lost their place."""

    async def line(self, group: str) -> list[LineDepth]: ...

    async def shares(self, group: str) -> list[TenantShare]:
        """Fair share per tenant of a group: waiting requests and service received (read only;
        see `top_shares`)."""

    async def usage(self, group: str, deployment_ids: Sequence[str]) -> list[DeploymentUsage]:
        """Current usage of the given deployments of a group (read only)."""

    async def overview(self, group: str, deployment_ids: Sequence[str],
                       tiers: Sequence[str] = ()) -> GroupView:
        """The group's line (per priority and per fair-share tenant) and the given deployments'
        usage, health and latency: one read-only call (the dashboard)."""

    async def seen(self, instance: str, window: float) -> dict[str, float]:
        """Note `instance` as alive now; every instance noted within `window` seconds, with
        how many seconds ago (the dashboard's fleet)."""

    async def ping(self) -> None:
        """Raise when the backend cannot serve."""
