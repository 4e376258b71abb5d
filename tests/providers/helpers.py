"""Small builders shared by the provider tests."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from router.groups import Deployment
from router.providers.base import CallContext

_ids = itertools.count()


def deployment(provider: str, model: str, **fields: Any) -> Deployment:
    """A deployment with a fresh id (adapters cache URLs and headers per id)."""
    params = dict(fields.pop("params", {}))
    for key in ("api_key", "api_base", "api_version"):
        if fields.get(key) is not None:
            params.setdefault(key, fields[key])
    return Deployment(id=f"test-{next(_ids)}", model_name=model, provider=provider, model=model,
                      params=params, **fields)


def context(http: httpx.AsyncClient, timeout: float = 5.0, **fields: Any) -> CallContext:
    return CallContext(http=http, timeout=timeout, **fields)


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]
