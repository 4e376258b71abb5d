"""The token counts of an upstream's chat `usage`, for the translated replies to carry."""

from __future__ import annotations

from typing import Any

from router.providers._shapes import clean_usage

__all__ = ["ChatCounts", "chat_counts"]

ChatCounts = tuple[int, int, int, int, int]
"""Prompt, completion, total, cached (prompt) and reasoning (completion) tokens: a plain tuple,
built on every translated reply (a NamedTuple costs several times as much to make)."""

_BOUND = 2**53
"""No model reads or writes that many tokens, and JSON numbers beyond it cannot be summed."""


_NONE: ChatCounts = (0, 0, 0, 0, 0)


def _detail(details: Any, name: str) -> int:
    """An optional detail (cached or reasoning tokens): a count, else 0."""
    value = details.get(name) if type(details) is dict else None
    return value if type(value) is int and 0 <= value < _BOUND else 0


def chat_counts(raw: Any) -> ChatCounts:
    """Counts of a chat `usage` (none: zeros). Counts that are not numbers, or absurd ones,
    raise ValueError or TypeError, which the routes answer as the upstream's failure (a 502)."""
    if raw is None:
        return _NONE
    usage = raw if type(raw) is dict else clean_usage(raw)  # clean_usage raises for a non-dict
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    total = usage.get("total_tokens") or 0
    if not (type(prompt) is int and type(completion) is int and type(total) is int):
        usage = clean_usage(usage)  # numbers sent as floats or digit strings, or a ValueError
        prompt = usage.get("prompt_tokens") or 0
        completion = usage.get("completion_tokens") or 0
        total = usage.get("total_tokens") or 0
    total = total or prompt + completion
    if not (0 <= prompt < _BOUND and 0 <= completion < _BOUND and 0 <= total < _BOUND):
        raise ValueError(f"usage counts no model has: {prompt}, {completion}, {total}")
    return (prompt, completion, total,
            _detail(usage.get("prompt_tokens_details"), "cached_tokens"),
            _detail(usage.get("completion_tokens_details"), "reasoning_tokens"))
