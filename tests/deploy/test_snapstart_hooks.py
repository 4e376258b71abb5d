"""SnapStart's runtime hooks, run locally around a snapshot-like fork of a warmed handler: the
snapshot holds no open connection, and each restored copy reconnects (to Redis and to the
upstream) and draws its own random numbers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.fake_openai import start_fake_openai
from tests.support.procs import PYTHON, REPO
from tests.support.redis_server import RedisServer, start_redis

PROBE = Path(__file__).with_name("snapstart_probe.py")


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


def test_hooks_drop_connections_and_reseed(tmp_path: Path, redis: RedisServer) -> None:
    with start_fake_openai() as upstream:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "model_list": [{"model_name": "chat", "litellm_params": {
                "model": "openai/fake", "api_base": upstream.url, "api_key": "sk-fake"}}],
            "router_settings": {"redis_url": f"redis://127.0.0.1:{redis.port}/0"}}))
        result = subprocess.run(
            [PYTHON, str(PROBE)], cwd=REPO, capture_output=True, text=True, timeout=60,
            env={"PATH": "/usr/bin:/bin", "CONFIG_FILE_PATH": str(config),
                 "LANEWAY_LOG_LEVEL": "WARNING", "AWS_LAMBDA_FUNCTION_NAME": "snap"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["hooks"] == [1, 1]
    assert report["warm"] == 200
    assert report["warm_tcp"] >= 2  # Redis (commands, subscription) and the upstream pool
    assert report["snapshot_tcp"] == 0
    first, second = report["restored"]
    assert first["status"] == second["status"] == 200  # reconnected after the restore
    assert first["tcp"] >= 2 and second["tcp"] >= 2
    assert first["random"] != second["random"]
