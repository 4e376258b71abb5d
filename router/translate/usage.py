"""The token counts of an upstream's chat `usage`, for the translated replies to carry."""

from __future__ import annotations

from typing import Any, NamedTuple

from router.providers._shapes import clean_usage

__all__ = ["ChatCounts", "chat_counts"]


class ChatCounts(NamedTuple):
    prompt: int
    completion: int
    total: int
    cached: int
    reasoning: int


def _detail(details: Any, name: str) -> int:
    """An optional detail (cached or reasoning tokens): a count, else 0."""
    value = details.get(name) if type(details) is dict else None
    return value if type(value) is int and 0 <= value < 2**53 else 0


def chat_counts(raw: Any) -> ChatCounts:
    """Counts of a chat `usage` (none: zeros). Counts that are not numbers, or absurd ones,
    raise ValueError or TypeError, which the routes answer as the upstream's failure (a 502)."""
    if raw is None:
        return ChatCounts(0, 0, 0, 0, 0)
    usage = clean_usage(raw)
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    total = usage.get("total_tokens") or prompt + completion
    if max(prompt, completion, total) >= 2**53:  # no model reads that much; JSON cannot sum it
        raise ValueError(f"usage counts beyond any model's: {total}")
    return ChatCounts(prompt, completion, total,
                      _detail(usage.get("prompt_tokens_details"), "cached_tokens"),
                      _detail(usage.get("completion_tokens_details"), "reasoning_tokens"))
