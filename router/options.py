"""The engine's settings, read once from `router_settings` / `litellm_settings` or from the
`Router(...)` keyword arguments, frozen, and passed down."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from router.httpclient.errors import DEFAULT_MAX_RESPONSE_BYTES

__all__ = ["DEFAULT_TIER", "RouterOptions", "fallback_map", "reservation_tiers"]

DEFAULT_TIMEOUT = 600.0
DEFAULT_MAX_QUEUE_SIZE = 1000
"""Waiters per model group's line when `max_queue_size` names no limit for it. Finite so that a
burst cannot grow a line (and the coroutines, connections and state entries behind it) without
bound; 1000 waiters is minutes of work for most deployments, past which a fast 429 with
Retry-After serves a client better than a long wait. -1 in the config still means unlimited."""


def fallback_map(value: Iterable[Mapping[str, Iterable[str]]] | None) -> dict[str, list[str]]:
    """`[{"a": ["b", "c"]}, ...]` (the config's shape) → `{"a": ["b", "c"], ...}`."""
    out: dict[str, list[str]] = {}
    for item in value or ():
        for group, targets in item.items():
            out.setdefault(str(group), []).extend(str(t) for t in targets)
    return out


def reservation_tiers(value: Mapping[str, float] | None) -> tuple[tuple[str, float], ...] | None:
    """`{"prod": 0.9, "dev": 0.1}` → the tiers with "default" (requests naming no tier) last,
    its share what the others leave unless it is named."""
    if not value:
        return None
    tiers = [(str(k), float(v)) for k, v in value.items() if k != DEFAULT_TIER]
    rest = value.get(DEFAULT_TIER, max(0.0, 1.0 - sum(v for _, v in tiers)))
    return (*tiers, (DEFAULT_TIER, round(float(rest), 9)))


DEFAULT_TIER = "default"


@dataclass(frozen=True, slots=True)
class RouterOptions:
    timeout: float = DEFAULT_TIMEOUT
    """Seconds a request may take in all: waiting in line, retries and upstream calls."""
    stream_timeout: float | None = None
    """Seconds allowed between stream chunks (and to the first one)."""
    num_retries: int = 2
    retry_after: float = 0.0
    """Smallest pause before retrying on the same deployment."""
    allowed_fails: int = 3
    cooldown_time: float = 5.0
    max_cooldown: float = 300.0
    """The longest cooldown an upstream's Retry-After (or rate-limit reset) may start."""
    fallbacks: Mapping[str, list[str]] = field(default_factory=dict)
    context_window_fallbacks: Mapping[str, list[str]] = field(default_factory=dict)
    content_policy_fallbacks: Mapping[str, list[str]] = field(default_factory=dict)
    default_fallbacks: tuple[str, ...] = ()
    default_priority: int | None = None
    max_queue_size: Mapping[str, int] = field(default_factory=dict)
    """Keys: "default", a group name, or "priority:<n>"; -1 = unlimited. A group with no entry
    (and no "default") gets DEFAULT_MAX_QUEUE_SIZE; a priority with no entry has no own limit."""
    queue_lease: float = 1.2
    """Seconds a waiter's place in line and an in-flight slot last without renewal (renewed
    every lease/3 while their request lives). A crashed or frozen instance's capacity comes
    back within a lease plus one renewal period of the survivors (their renewal clears its
    dead waiters): 1.6 s, inside the 2 s promised."""
    polling_interval: float | None = None
    drop_params: bool = False
    default_max_parallel_requests: int | None = None
    default_completion_tokens: int = 256
    """Completion tokens reserved for tpm when a request sets no max_tokens."""
    fairness: str = "key"
    """Fair share inside a priority among: "key", "team", "user" (the OpenAI `user` field), or
    "off" (arrival order)."""
    fairness_output_weight: float = 2.0
    """How many input tokens one output token counts as, for fair share."""
    priority_reservation: tuple[tuple[str, float], ...] = ()
    """Reservation tiers, (name, share of each group's capacity), "default" last: the tier
    of requests whose key and team name none (the share left over unless configured)."""
    priority_aging: float = 0.0
    """Seconds after which a waiter moves ahead of every priority (0: strict priority)."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Largest upstream body (non-streamed) or stream event taken; bigger ones are a 502."""

    def tier_of(self, name: str | None) -> int:
        """The index in `priority_reservation` of tier `name` (unknown or None: "default")."""
        for i, (tier, _) in enumerate(self.priority_reservation):
            if tier == name:
                return i
        return len(self.priority_reservation) - 1

    def queue_limits(self, group: str, priority: int) -> tuple[int, int]:
        """(max waiters in the group, max waiters at this priority); -1 = unlimited."""
        per_group = self.max_queue_size.get(
            group, self.max_queue_size.get("default", DEFAULT_MAX_QUEUE_SIZE))
        per_prio = self.max_queue_size.get(f"priority:{priority}", -1)
        return int(per_group), int(per_prio)

    @property
    def safety_interval(self) -> float:
        # polling_interval is honoured as a safety net only: waiters are woken by events.
        return max(self.polling_interval or 1.0, 0.01)

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> RouterOptions:
        """Build from one flat mapping of settings (router_settings over litellm_settings)."""
        def pick(*names: str) -> Any:
            return next((s[n] for n in names if s.get(n) is not None), None)

        mqs = s.get("max_queue_size")
        queue_sizes = ({"default": int(mqs)} if isinstance(mqs, int)
                       else {str(k): int(v) for k, v in (mqs or {}).items()})
        kw: dict[str, Any] = {
            "timeout": pick("timeout", "request_timeout"),
            "stream_timeout": pick("stream_timeout"),
            "num_retries": pick("num_retries"),
            "retry_after": pick("retry_after"),
            "allowed_fails": pick("allowed_fails"),
            "cooldown_time": pick("cooldown_time"),
            "max_cooldown": pick("max_cooldown_seconds"),
            "default_priority": pick("default_priority"),
            "queue_lease": pick("queue_lease_seconds"),
            "polling_interval": pick("polling_interval"),
            "drop_params": pick("drop_params"),
            "default_max_parallel_requests": pick("default_max_parallel_requests"),
            "default_completion_tokens": pick("default_max_tokens"),
            "fairness": pick("fairness"),
            "fairness_output_weight": pick("fairness_output_weight"),
            "priority_aging": pick("priority_aging"),
            "priority_reservation": reservation_tiers(s.get("priority_reservation")),
            "max_response_bytes": pick("max_response_bytes"),
        }
        kw = {k: v for k, v in kw.items() if v is not None}
        return cls(
            **kw,
            fallbacks=fallback_map(s.get("fallbacks")),
            context_window_fallbacks=fallback_map(s.get("context_window_fallbacks")),
            content_policy_fallbacks=fallback_map(s.get("content_policy_fallbacks")),
            default_fallbacks=tuple(s.get("default_fallbacks") or ()),
            max_queue_size=queue_sizes,
        )
