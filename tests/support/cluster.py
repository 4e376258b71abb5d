"""Several laneway gateway processes sharing one Redis, as a fleet of instances would."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.support.gateway import Gateway, start_gateway


def unique(name: str) -> str:
    """A model name no other test uses, so shared Redis keys and fake counters never collide."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


@contextmanager
def fleet(
    config: dict[str, Any] | list[dict[str, Any]], n: int = 3, env: dict[str, str] | None = None,
    key: str | None = None,
) -> Iterator[list[Gateway]]:
    """`n` gateways on one config, or one gateway per config of a list."""
    configs = config if isinstance(config, list) else [config] * n
    gateways: list[Gateway] = []
    try:
        for each in configs:
            gateways.append(start_gateway(each, env, key=key))
        yield gateways
    finally:
        for gw in gateways:
            gw.stop()


def chat_body(model: str, content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


async def spread(
    gateways: list[Gateway], bodies: list[dict[str, Any]], timeout: float = 60.0
) -> list[httpx.Response]:
    """Send `bodies` concurrently, round-robin over the gateways."""
    rotation = itertools.cycle(gateways)
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        return list(await asyncio.gather(*(
            client.post(f"{next(rotation).url}/v1/chat/completions", json=body)
            for body in bodies
        )))


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Poll `check` until it holds; fail the test, naming `what`, if it does not in time.
    Scenarios use it to know a request has reached a given point before sending the next."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)
