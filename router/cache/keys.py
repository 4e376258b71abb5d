"""The cache key: a digest of the normalized request, and the per-request controls.

Everything that can change the answer is in the key (the model group, the messages or prompt
or input, tools, sampling parameters, the response format...); what does not is left out:
who asked (`user`, `metadata`), how the answer travels (`stream`, `stream_options`) and
laneway's own fields (`priority`, `timeout`, the `cache` controls). The scope adds the caller:
its key, its team, or nobody (`global`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from router.errors import BadRequest
from router.tenants.records import Principal

__all__ = ["Controls", "cache_digest", "controls_of", "scope_of"]

IGNORED = frozenset({"user", "metadata", "stream", "stream_options", "priority", "timeout",
                     "num_retries", "mock_response", "cache", "model"})
"""Body fields that never change the answer (or are laneway's own)."""


@dataclass(frozen=True, slots=True)
class Controls:
    """LiteLLM's per-request `cache: {...}` controls."""

    no_cache: bool = False
    """Do not answer from the cache (the fresh answer is still stored)."""
    no_store: bool = False
    """Do not store this answer."""
    use_cache: bool | None = None
    """Opt in (`mode: default_off`) or out; None when not said."""
    ttl: float | None = None
    """Seconds to keep this answer."""
    max_age: float | None = None
    """`s-maxage`: only take an entry stored at most this many seconds ago."""
    namespace: str | None = None


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise BadRequest(f"`cache.{name}` must be a positive number of seconds.",
                         param="cache")
    return float(value)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(f"`cache.{name}` must be true or false.", param="cache")
    return value


def controls_of(value: Any) -> Controls:
    """The body's `cache` field (absent → defaults); a malformed one is a 400."""
    if value is None:
        return Controls()
    if not isinstance(value, dict):
        raise BadRequest("`cache` must be an object such as {\"no-cache\": true}.",
                         param="cache")
    namespace = value.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace
                                  or len(namespace) > 200):
        raise BadRequest("`cache.namespace` must be a non-empty string (up to 200 "
                         "characters).", param="cache")
    use = value.get("use-cache")
    return Controls(
        no_cache=_flag(value.get("no-cache", False), "no-cache"),
        no_store=_flag(value.get("no-store", False), "no-store"),
        use_cache=None if use is None else _flag(use, "use-cache"),
        ttl=None if value.get("ttl") is None else _seconds(value["ttl"], "ttl"),
        max_age=(None if value.get("s-maxage") is None
                 else _seconds(value["s-maxage"], "s-maxage")),
        namespace=namespace,
    )


def scope_of(principal: Principal, scope: str) -> str:
    """Whose answers a request may share: one key's, one team's (a key without a team is its
    own team), or everyone's. The master key and anonymous callers share one scope each."""
    if scope == "global":
        return "global"
    key = principal.key
    if key is None:
        return f"caller:{principal.kind}"
    if scope == "team" and key.team_id:
        return f"team:{key.team_id}"
    return f"key:{key.key_hash}"


def cache_digest(endpoint: str, group: str, body: dict[str, Any], scope: str,
                 namespace: str) -> str | None:
    """The hex SHA-256 naming the entry, or None when the body cannot be normalized (a value
    JSON cannot hold): such a request is simply not cached."""
    material = {k: v for k, v in body.items() if k not in IGNORED}
    try:
        text = orjson.dumps([endpoint, group, scope, namespace, material],
                            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return hashlib.sha256(text).hexdigest()
