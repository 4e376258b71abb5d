"""What a call costs: a deployment's prices per token, and the cost of a call's usage.

Prices come from the deployment (`input_cost_per_token` / `output_cost_per_token` in
`litellm_params` or `model_info`, LiteLLM's names), else from the table shipped in
`router/data/prices.json` (vendors' public prices; its `_about` says from when), matched by the
model id without a date suffix or vendor path (`anthropic.claude-3-5-sonnet-20240620-v1:0` is
`claude-3-5-sonnet`; only exact names match). A deployment with no known price costs nothing.

Costs are kept in nano-USD integers, so that shared counters add exactly.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from router.providers._per_deployment import PerDeployment

if TYPE_CHECKING:
    from router.groups import Deployment

__all__ = ["NANO", "Price", "call_cost", "price_of"]

NANO = 1_000_000_000
"""nano-USD per USD."""

Price = tuple[float, float]
"""(USD per input token, USD per output token)."""

_DATE = re.compile(r"[-@](?:\d{4}-?\d{2}-?\d{2}|\d{4})(?=$|[-:@])")


@cache
def _table() -> dict[str, Price]:
    raw = json.loads(resources.files("router").joinpath("data", "prices.json").read_text())
    return {k: (float(v[0]), float(v[1])) for k, v in raw.items() if not k.startswith("_")}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


@cache
def _listed(model: str) -> Price | None:
    table = _table()
    name = model.rsplit("/", 1)[-1].lower()
    name = name.split(".", 1)[1] if name.startswith(("anthropic.", "meta.", "amazon.")) else name
    name = re.sub(r"-v\d+(?::\d+)?$", "", name)  # Bedrock's -v1:0
    name = _DATE.sub("", name).removesuffix("-latest")
    # Exact names only: a prefix match would price `o3-pro` as `o3`, a fifth of its cost.
    return table.get(name) or table.get(name + "-latest")


def price_of(d: Deployment) -> Price | None:
    """The deployment's price per token, or None when nothing says what it costs."""
    return _prices(d)


def _price_of(d: Deployment) -> Price | None:
    for source in (d.params, d.model_info):
        given_in = _number(source.get("input_cost_per_token"))
        given_out = _number(source.get("output_cost_per_token"))
        if given_in is not None or given_out is not None:
            return (given_in or 0.0, given_out or 0.0)
    return _listed(str(d.model_info.get("base_model") or d.model))


def call_cost(price: Price | None, prompt_tokens: int, completion_tokens: int) -> int:
    """The cost of a call in nano-USD."""
    if price is None:
        return 0
    return math.ceil((prompt_tokens * price[0] + completion_tokens * price[1]) * NANO)


_prices = PerDeployment(_price_of, per_model=True)  # asked twice a request with a budget
