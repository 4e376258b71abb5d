"""A request's tenant: which models it may use, its priority, and what it asks of its key's
and team's limits and budgets.

The counters themselves change inside the admission and release scripts (router/state,
tenant.lua); this module turns a `Principal` into what those scripts take, and a refusal back
into the error the client sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from router.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    RequestError,
    TenantLimited,
    echoed,
)
from router.pricing import NANO
from router.state.base import Refused, TenantAsk, TenantEntity
from router.tenants.records import Limits, Principal, duration_seconds

if TYPE_CHECKING:
    from router.groups import Group

__all__ = ["allowed", "ask_for", "check_access", "clamp_priority", "default_priority",
           "needs_estimate", "refusal_error"]

_WHO = ("key", "team")


def _nano(usd: float | None) -> int:
    return -1 if usd is None else max(0, math.floor(usd * NANO))


def _entity(name: str, limits: Limits, group: str) -> TenantEntity:
    period = duration_seconds(limits.budget_duration) if limits.budget_duration else 0.0
    return TenantEntity(
        name=name,
        rpm=limits.rpm_limit or 0,
        tpm=limits.tpm_limit or 0,
        parallel=limits.max_parallel_requests or 0,
        model_rpm=int(limits.model_rpm_limit.get(group) or 0),
        model_tpm=int(limits.model_tpm_limit.get(group) or 0),
        budget=_nano(limits.max_budget),
        soft_budget=_nano(limits.soft_budget),
        period_ms=round(period * 1000),
    )


def entities_of(p: Principal, group: str) -> tuple[str, tuple[TenantEntity, ...]]:
    """(hash tag, entities) of a virtual key's principal."""
    assert p.key is not None
    key = _entity(f"key:{p.key.key_hash}", p.key.limits, group)
    if p.team is None:
        return f"key:{p.key.key_hash}", (key,)
    return f"team:{p.team.team_id}", (key, _entity("team", p.team.limits, group))


_MAX_PLANS = 1024


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every request of one key (and team) on one model group asks alike."""

    tag: str
    entities: tuple[TenantEntity, ...]
    needs_estimate: bool
    zero: Refused | None
    """A limit of 0, which refuses every request."""


def _plan(p: Principal, group: str) -> _Plan:
    """Worked out once per principal and group: a key's principal stands for one version of
    its records (Tenants.check), so a changed record comes with a new principal."""
    plan = p.derived.get(group)
    if plan is not None:
        return plan
    assert p.key is not None
    zero = None
    for i, lim in enumerate(_limits(p)):
        for name, value in (("rpm", lim.rpm_limit), ("tpm", lim.tpm_limit),
                            ("parallel", lim.max_parallel_requests),
                            ("model_rpm", lim.model_rpm_limit.get(group)),
                            ("model_tpm", lim.model_tpm_limit.get(group))):
            if value == 0 and zero is None:
                zero = Refused(name, i, None)
    tag, entities = entities_of(p, group)
    plan = _Plan(tag, entities, any(
        lim.tpm_limit or lim.model_tpm_limit.get(group) or lim.max_budget is not None
        for lim in _limits(p)), zero)
    if len(p.derived) >= _MAX_PLANS:  # a wildcard group has a name per model asked for
        p.derived.clear()
    p.derived[group] = plan
    return plan


def ask_for(p: Principal, group: str, cost: int) -> TenantAsk | None:
    """What a request of `p` asks of its tenant, or None for the master key (no limits).
    A limit of 0 allows nothing (the scripts read 0 as "no limit"): refused here."""
    if p.key is None:
        return None
    plan = _plan(p, group)
    if plan.zero is not None:
        raise refusal_error(plan.zero, p)
    return TenantAsk(tag=plan.tag, entities=plan.entities, group=group, cost=cost)


def needs_estimate(p: Principal, group: str) -> bool:
    """Whether the tenant's checks need the request's tokens or cost estimated."""
    if p.key is None:
        return False
    return _plan(p, group).needs_estimate


def _limits(p: Principal) -> Iterable[Limits]:
    if p.key is not None:
        yield p.key.limits
    if p.team is not None:
        yield p.team.limits


# -- model access ------------------------------------------------------------------------------
def denied_by(p: Principal, requested: str, group: Group) -> str | None:
    """"key" or "team" when its `models` list does not allow `requested` (by the requested
    name, its group's name or one of the group's access groups); None when both allow it."""
    names: set[str] | None = None
    for who, lim in (("key", p.key.limits if p.key else None),
                     ("team", p.team.limits if p.team else None)):
        if lim is None or not lim.models or "*" in lim.models:
            continue
        if names is None:
            names = {requested, group.name}
            for d in group.deployments:
                names.update(str(a) for a in (d.model_info.get("access_groups") or ()))
        if not names.intersection(lim.models):
            return who
    return None


def allowed(p: Principal, requested: str, group: Group) -> bool:
    return denied_by(p, requested, group) is None


def check_access(p: Principal, requested: str, group: Group) -> None:
    who = denied_by(p, requested, group)
    if who is not None:
        raise AuthenticationFailed(
            f"This {who} is not allowed to use the model `{echoed(requested)}`.", param="model",
            code="model_access_denied")


# -- priority ----------------------------------------------------------------------------------
def default_priority(p: Principal, metadata: Any) -> int | None:
    """A key's `default_priority` (or an integer `metadata.priority`, LiteLLM's spelling),
    else its team's; None when neither sets one."""
    if p.key is not None:
        if p.key.limits.default_priority is not None:
            return p.key.limits.default_priority
        meta = p.key.metadata.get("priority") if p.key.metadata else None
        if isinstance(meta, int) and not isinstance(meta, bool):
            return meta
    if p.team is not None and p.team.limits.default_priority is not None:
        return p.team.limits.default_priority
    return None


def clamp_priority(p: Principal, priority: int) -> int:
    """Never more important (smaller) than the key's or the team's `priority_floor`."""
    for lim in _limits(p):
        if lim.priority_floor is not None and priority < lim.priority_floor:
            priority = lim.priority_floor
    return priority


# -- refusals ----------------------------------------------------------------------------------
_HEADER = {"rpm": "requests", "model_rpm": "requests", "tpm": "tokens", "model_tpm": "tokens"}


def refusal_error(refused: Refused, p: Principal) -> RequestError:
    who = _WHO[refused.entity] if refused.entity < 2 else "key"
    limits = (p.team.limits if refused.entity == 1 and p.team is not None
              else p.key.limits if p.key is not None else Limits())
    if refused.limit == "budget":
        budget = limits.max_budget or 0.0
        when = (f"; it resets in {math.ceil(refused.retry_in)}s" if refused.retry_in
                else "")
        return BudgetExceeded(f"The {who}'s budget of ${budget:g} is spent{when}.")
    limit = {
        "rpm": limits.rpm_limit, "tpm": limits.tpm_limit,
        "parallel": limits.max_parallel_requests,
    }.get(refused.limit)
    what = {"rpm": "requests per minute", "tpm": "tokens per minute",
            "parallel": "parallel requests", "model_rpm": "requests per minute for this model",
            "model_tpm": "tokens per minute for this model"}[refused.limit]
    retry = refused.retry_in if refused.retry_in is not None else 1.0
    headers: dict[str, str] = {}
    kind = _HEADER.get(refused.limit)
    if kind is not None:
        if limit is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
        headers[f"x-ratelimit-remaining-{kind}"] = "0"
        headers[f"x-ratelimit-reset-{kind}"] = f"{max(retry, 0.0):.3f}s"
    shown = f" ({limit})" if limit is not None else ""
    return TenantLimited(
        f"The {who}'s limit of {what}{shown} is reached; retry after "
        f"{max(1, math.ceil(retry))}s.",
        retry_after=max(retry, 0.001), headers=headers,
        code=f"{who}_{refused.limit}_limit_exceeded")
