"""Hot reload (`general_settings.config_reload_seconds`) through a real gateway under load: a
changed include is swapped in, an invalid one is logged by path and ignored, deployment ids
stay, and no request fails while the config changes. Plus the checks against S3 and GCS."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from router.config import load_config
from router.config.watch import ConfigWatcher
from tests.config.conftest import GcsStore, S3Store
from tests.support.gateway import clean_env, start_gateway

MAIN = {"include": ["models.yaml"],
        "general_settings": {"config_reload_seconds": 0.2},
        "router_settings": {"num_retries": 0}}


def models(answer: str, *extra: str) -> str:
    entries = [{"model_name": "chat", "litellm_params": {"model": "openai/x",
                                                         "mock_response": answer}},
               {"model_name": "steady", "litellm_params": {"model": "openai/steady",
                                                           "mock_response": "same"}}]
    entries += [{"model_name": name, "litellm_params": {"model": f"openai/{name}",
                                                        "mock_response": name}}
                for name in extra]
    return yaml.safe_dump({"model_list": entries})


def _rewrite(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # atomic, as a deploy tool writes it


async def _until(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_reload_under_load(tmp_path: Path) -> None:
    main, include = tmp_path / "config.yaml", tmp_path / "models.yaml"
    main.write_text(yaml.safe_dump(MAIN))
    include.write_text(models("v1"))
    gw = start_gateway(MAIN, {**clean_env(), "CONFIG_FILE_PATH": str(main)})
    try:
        asyncio.run(_reload_under_load(gw.url, include))
    finally:
        log = gw.stop()
    assert "router_settings.num_retries" in log  # the invalid config, named by path
    assert "still serving the previous config" in log
    assert log.count("reloaded") == 1


async def _reload_under_load(url: str, include: Path) -> None:
    statuses: list[int] = []
    answers: list[str] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await _until(lambda: _serves(client, "v1"))
        ids_before = await _ids(client)

        async def hammer() -> None:
            while not stop.is_set():
                r = await client.post("/v1/chat/completions", json={
                    "model": "chat", "messages": [{"role": "user", "content": "hi"}]})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    answers.append(r.json()["choices"][0]["message"]["content"])

        workers = [asyncio.create_task(hammer()) for _ in range(6)]
        try:
            await asyncio.sleep(0.3)
            _rewrite(include, models("v2", "extra"))
            await _until(lambda: _serves(client, "v2"))
            models_listed = (await client.get("/v1/models")).json()["data"]
            assert "extra" in {m["id"] for m in models_listed}
            # An invalid change is ignored: the gateway keeps serving v2.
            _rewrite(include.parent / "config.yaml", yaml.safe_dump(
                {**MAIN, "router_settings": {"num_retries": -1}}))
            await asyncio.sleep(0.8)
            assert await _serves(client, "v2")
        finally:
            stop.set()
            await asyncio.gather(*workers)
        ids_after = await _ids(client)
    assert len(statuses) > 50
    assert set(statuses) == {200}, sorted(set(statuses))
    assert {"v1", "v2"} <= set(answers)
    # The unchanged deployment keeps its id, so its limits and health carry over.
    assert ids_before["steady"] == ids_after["steady"]
    assert ids_before["chat"] != ids_after["chat"]  # its params changed: a new deployment


async def _serves(client: httpx.AsyncClient, answer: str) -> bool:
    r = await client.post("/v1/chat/completions", json={
        "model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    return r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == answer


async def _ids(client: httpx.AsyncClient) -> dict[str, str]:
    data = (await client.get("/v1/model/info")).json()["data"]
    return {d["model_name"]: d["model_info"]["id"] for d in data}


# --- what a check asks of each store --------------------------------------------------------

CONFIG = "model_list:\n  - model_name: {name}\n    litellm_params: {{model: openai/x}}\n"


def test_file_check_sees_an_include_change(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("include: [more.yaml]\n" + CONFIG.format(name="a"))
    (tmp_path / "more.yaml").write_text(CONFIG.format(name="b"))
    watcher = ConfigWatcher(load_config(str(tmp_path / "config.yaml"), environ={}), 60)
    assert watcher.check() is None
    (tmp_path / "more.yaml").write_text(CONFIG.format(name="c"))
    fresh = watcher.check()
    assert fresh is not None and [m.model_name for m in fresh.model_list] == ["a", "c"]
    (tmp_path / "more.yaml").touch()  # a new mtime, the same bytes: not a change
    assert watcher.check() is None


def test_s3_check_rotated_object(s3_store: S3Store) -> None:
    bucket = f"reload-{uuid.uuid4().hex[:8]}"
    s3_store.put(bucket, "config.yaml", CONFIG.format(name="a").encode())
    watcher = ConfigWatcher(load_config(f"s3://{bucket}/config.yaml",
                                        environ=s3_store.environ()), 60)
    assert watcher.check() is None  # 304 Not Modified
    s3_store.put(bucket, "config.yaml", CONFIG.format(name="b").encode())
    fresh = watcher.check()
    assert fresh is not None and fresh.model_list[0].model_name == "b"
    assert watcher.check() is None


def test_gcs_check_new_generation(gcs_store: GcsStore, caplog: pytest.LogCaptureFixture) -> None:
    bucket = f"reload-{uuid.uuid4().hex[:8]}"
    gcs_store.put(bucket, "config.yaml", CONFIG.format(name="a").encode())
    watcher = ConfigWatcher(load_config(f"gs://{bucket}/config.yaml",
                                        environ={"STORAGE_EMULATOR_HOST": gcs_store.host}), 60)
    assert watcher.check() is None
    gcs_store.put(bucket, "config.yaml", b"model_list: [oops")
    assert watcher.check() is None
    assert "invalid YAML" in caplog.text and "still serving the previous config" in caplog.text
    gcs_store.put(bucket, "config.yaml", CONFIG.format(name="b").encode())
    fresh = watcher.check()
    assert fresh is not None and fresh.model_list[0].model_name == "b"
    assert watcher.check() is None
