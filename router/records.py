"""What the engine reports about each finished request, for logs, metrics and callbacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CallRecord", "Observer"]


@dataclass(slots=True)
class CallRecord:
    request_id: str
    endpoint: str
    """"chat", "text" or "embed"."""
    model: str
    """The model name the client asked for."""
    model_group: str = ""
    deployment_id: str = ""
    provider: str = ""
    priority: int | None = None
    stream: bool = False
    queued: bool = False
    queue_seconds: float = 0.0
    upstream_seconds: float = 0.0
    time_to_first_token: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    status: int = 200
    error_type: str | None = None
    retries: int = 0
    fallback_from: str | None = None
    cost: float = 0.0
    """USD the call cost (0 when no price is known)."""
    key_alias: str | None = None
    """The virtual key's alias (never the key), None for the master key."""
    team_id: str | None = None
    soft_budget_crossed: tuple[str, ...] = ()
    """"key" and/or "team" when this request's spend crossed a soft budget."""
    cooldowns: list[str] = field(default_factory=list)
    """Deployment ids this request's failures put into cooldown."""
    cache_key: str | None = None
    """The response cache entry's digest (None when the request was not cached)."""
    cache_hit: bool = False
    """Answered from the response cache (no upstream call, no slot, cost 0)."""
    cache_stored: bool = False
    """This request's answer was stored in the response cache."""
    cache_joined: bool = False
    """This request waited for an identical request's call (single-flight)."""


Observer = Callable[[CallRecord], None]
