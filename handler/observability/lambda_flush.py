"""Flush callbacks, alerts and EMF lines before a Lambda invocation returns.

A Lambda container is frozen as soon as the handler returns, and a frozen container runs no
background task, so whatever is pending would wait for the next invocation (or be lost).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handler.observability.hub import Observability

__all__ = ["flushing"]

MAX_FLUSH_SECONDS = 2.0
_RESERVE_SECONDS = 0.5
"""Left to the runtime to hand the response back, out of the invocation's remaining time."""


def flushing(handler: Callable[[Any, Any], Any], hub: Observability) -> Callable[[Any, Any], Any]:
    def invoke(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            budget = MAX_FLUSH_SECONDS
            remaining = getattr(context, "get_remaining_time_in_millis", None)
            if callable(remaining):
                budget = min(budget, remaining() / 1000 - _RESERVE_SECONDS)
            if budget > 0:
                hub.flush_blocking(budget)

    return invoke
