"""Routing strategies: in which order a request's candidate deployments are tried.

The state backend makes the final choice inside the admission script (it alone sees live usage
across instances); a strategy only says how to rank: the order given here (simple-shuffle), or by
in-flight count, token usage or latency measured in shared state.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from router.errors import ConfigError
from router.groups import Deployment
from router.state.base import Order

__all__ = ["STRATEGIES", "Strategy", "strategy_named"]

STRATEGIES: dict[str, Order] = {
    "simple-shuffle": "given",
    "least-busy": "least-busy",
    "usage-based-routing": "usage",
    "usage-based-routing-v2": "usage",
    "latency-based-routing": "latency",
}


def _weight(d: Deployment) -> float:
    for w in (d.weight, d.rpm, d.tpm):
        if w:
            return float(w)
    return 1.0


@dataclass(frozen=True, slots=True)
class Strategy:
    name: str
    order: Order
    latency_buffer: float = 0.0

    def arrange(
        self, deployments: Sequence[Deployment], avoid: Collection[str] = ()
    ) -> list[Deployment]:
        """Candidates in preference order; deployments in `avoid` (failed on an earlier
        attempt of this request) are left out unless nothing else remains."""
        pool = [d for d in deployments if d.id not in avoid] or list(deployments)
        if len(pool) < 2:
            return pool
        if self.order != "given":
            # The backend ranks by live usage; a random order breaks its ties fairly.
            return random.sample(pool, len(pool))
        # Weighted shuffle: each deployment's chance to come first is proportional to its weight
        # (weight, else rpm, else tpm); the rest follow in the same weighted way.
        keyed = [(random.random() ** (1.0 / _weight(d)), d) for d in pool]
        keyed.sort(key=lambda kd: kd[0], reverse=True)
        return [d for _, d in keyed]


def strategy_named(name: str, args: dict | None = None) -> Strategy:
    order = STRATEGIES.get(name)
    if order is None:
        valid = ", ".join(STRATEGIES)
        raise ConfigError(f"router_settings.routing_strategy: unknown strategy {name!r} "
                          f"(valid: {valid})")
    buffer = float((args or {}).get("lowest_latency_buffer", 0.0))
    return Strategy(name, order, buffer)
