"""Any number of distinct names through a wildcard costs bounded memory: the per-name caches
(resolved groups, adapters' URLs and headers, token counters) are bounded, and the deployments
made from one template share its id, so nothing in the engine grows with the names."""

from __future__ import annotations

import asyncio
import gc

import pytest

from router import Router
from router.config import parse_config
from router.groups import ModelGroups, build_deployments
from router.providers.catalog import get_provider

NAMES = 100_000
MB = 1024 * 1024


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _templates() -> ModelGroups:
    config = parse_config({"model_list": [
        {"model_name": f"{prefix}/*", "litellm_params": {
            "model": f"{prefix}/*", "api_base": "http://127.0.0.1:9", "api_key": "k-0123456789",
            "api_version": "2024-06-01", "aws_access_key_id": "AKIDMEMORYTEST000001",
            "aws_secret_access_key": "s-0123456789", "aws_region_name": "us-east-1"}}
        for prefix in ("openai", "azure", "bedrock", "anthropic", "ollama", "huggingface")
    ] + [{"model_name": "*", "litellm_params": {"model": "*", "api_base": "http://127.0.0.1:9",
                                                 "rpm": 100, "tpm": 1000}}]})
    return ModelGroups(build_deployments(config))


def test_100k_names_through_the_adapters_stay_bounded() -> None:
    groups = _templates()
    openai, azure, tgi = get_provider("openai"), get_provider("azure"), get_provider("huggingface")
    anthropic, ollama = get_provider("anthropic"), get_provider("ollama")

    prefixes = ("openai", "azure", "bedrock", "anthropic", "ollama", "huggingface", "")

    def touch(i: int) -> None:
        for prefix in (prefixes[i % len(prefixes)],):
            name = f"{prefix}/model-{i}" if prefix else f"bare-model-{i}"
            group = groups.resolve(name)
            d = group.deployments[0]
            assert group.name == (f"{prefix}/*" if prefix else "*")
            d.token_counter()
            if d.provider == "azure":
                azure.url(d, "chat/completions")
                azure.headers(d)
            elif d.provider == "openai":
                openai.url(d, "chat/completions")
                openai.headers(d)
            elif d.provider == "huggingface":
                tgi.url(d, "chat/completions")
                tgi.headers(d)
            elif d.provider == "anthropic":
                anthropic._url(d)  # type: ignore[attr-defined]
                anthropic._headers(d)  # type: ignore[attr-defined]
            elif d.provider == "ollama":
                ollama._url(d, "api/chat")  # type: ignore[attr-defined]

    for i in range(2_000):  # warm up: tokenizers loaded, caches at their working size
        touch(i)
    gc.collect()
    before = _rss()
    for i in range(2_000, 2_000 + NAMES):
        touch(i)
    gc.collect()
    grown = _rss() - before
    assert grown < 20 * MB, f"RSS grew by {grown / MB:.1f} MB over {NAMES} names"


@pytest.mark.asyncio(loop_scope="function")
async def test_distinct_names_cost_the_engine_nothing_per_name() -> None:
    """Through the engine (admission, state, dispatch, adapter): requests for 20,000 distinct
    names grow memory no more than as many requests for one name, within 4 MB (the per-request
    history the in-process state keeps for a minute is the same for both)."""
    count = 20_000

    async def growth(name_of: object) -> int:
        router = Router(model_list=[{"model_name": "*", "litellm_params": {
            "model": "*", "mock_response": "ok", "max_parallel_requests": 64}}])

        async def run(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                await router.acompletion(model=name_of(i),  # type: ignore[operator]
                                         messages=[{"role": "user", "content": "hi"}])

        await asyncio.gather(*(run(k * 100, k * 100 + 100) for k in range(10)))
        gc.collect()
        before = _rss()
        step = count // 20
        await asyncio.gather(*(run(10_000 + k * step, 10_000 + (k + 1) * step)
                               for k in range(20)))
        gc.collect()
        grown = _rss() - before
        await router.aclose()
        return grown

    same = await growth(lambda i: "one-name")
    distinct = await growth(lambda i: f"name-{i}")
    assert distinct - same < 4 * MB, (
        f"{count} distinct names grew RSS by {distinct / MB:.1f} MB, "
        f"one name by {same / MB:.1f} MB")
