"""The `laneway` command refuses configs it could not serve as written: exit code 2, one clear
message on stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.gateway.test_startup import MOCK, run_cli
from tests.support.gateway import start_gateway, write_config
from tests.support.procs import PYTHON, REPO
from tests.support.redis_server import RedisServer


def refused(config: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> str:
    path = write_config(config)
    result = run_cli("--config", str(path), "--port", "1", *args, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_included_models_are_served_and_a_missing_include_is_named(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "chat.yaml").write_text(yaml.safe_dump(MOCK))
    config = {"include": ["models/chat.yaml"], "router_settings": {"num_retries": 0}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    gw = start_gateway(config, {"CONFIG_FILE_PATH": str(tmp_path / "config.yaml")})
    try:
        r = httpx.post(f"{gw.url}/v1/chat/completions",
                       json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert r.json()["choices"][0]["message"]["content"] == "hi"
    finally:
        gw.stop()
    stderr = refused({"include": ["models/absent.yaml"]})
    assert "include[0] (models/absent.yaml): config file " in stderr
    assert "absent.yaml not found" in stderr


def test_no_models_at_all() -> None:
    stderr = refused({"model_list": [], "router_settings": {"routing_strategy": "least-busy"}})
    assert "serves no models: model_list is empty or missing" in stderr


def test_every_model_filtered_out_by_the_environment() -> None:
    config = {"model_list": [{**MOCK["model_list"][0],
                              "model_info": {"supported_environments": ["staging"]}}]}
    stderr = refused(config, env={"LANEWAY_ENVIRONMENT": "production"})
    assert "serves no models in environment 'production' (LANEWAY_ENVIRONMENT)" in stderr
    assert "(they list: staging)" in stderr


def test_a_provider_laneway_does_not_serve() -> None:
    config = {"model_list": [MOCK["model_list"][0], {"model_name": "gemini", "litellm_params": {
        "model": "watsonx/ibm/granite-13b", "project_id": "p"}}]}
    stderr = refused(config)
    assert "model_list[1].litellm_params.model: provider 'watsonx' is not served" in stderr
    assert "bedrock" in stderr and "anthropic" in stderr  # the prefixes it does serve


def test_a_bad_redis_url_from_the_config_or_the_environment() -> None:
    config = {**MOCK, "router_settings": {"redis_url": "http://:pw-not-shown@cache:6379"}}
    stderr = refused(config)
    assert "router_settings.redis_url: must start with redis:// or rediss://" in stderr
    assert "pw-not-shown" not in stderr
    stderr = refused(MOCK, env={"REDIS_URL": "redis://cache.internal:port"})
    assert "REDIS_URL: has a port that is not a number" in stderr
    stderr = refused(MOCK, env={"REDIS_HOST": "cache.internal:6380"})
    assert "REDIS_HOST: must be a host name or address without a port" in stderr


def test_bedrock_without_botocore_is_refused_with_the_extra_to_install() -> None:
    config = {"model_list": [{"model_name": "claude", "litellm_params": {
        "model": "bedrock/anthropic.claude-3-haiku", "aws_region_name": "us-east-1"}}]}
    path = write_config(config)
    # The gateway runs as usual, in a process where botocore cannot be found.
    script = textwrap.dedent("""
        import sys

        class HideBotocore:
            def find_spec(self, fullname, path=None, target=None):
                if fullname == "botocore" or fullname.startswith("botocore."):
                    raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
                return None

        sys.meta_path.insert(0, HideBotocore())
        from handler.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    result = subprocess.run([PYTHON, "-c", script, "--config", str(path), "--port", "1"],
                            capture_output=True, text=True, cwd=REPO, timeout=60,
                            env={**os.environ, "CONFIG_FILE_PATH": "", "LANEWAY_CONFIG": ""})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "model_list[0].litellm_params.model: bedrock/anthropic.claude-3-haiku signs its " \
           "requests with botocore, which is not installed: pip install 'laneway[aws]'" \
           in result.stderr
    assert "Traceback" not in result.stderr


def test_several_workers_without_redis_are_refused() -> None:
    stderr = refused(MOCK, "--num_workers", "3")
    assert "--num_workers 3 needs Redis" in stderr
    assert "3 times the configured one" in stderr
    assert "--allow_per_worker_state" in stderr


def test_several_workers_share_redis(redis_server: RedisServer) -> None:
    gw = start_gateway(MOCK, {"REDIS_URL": redis_server.url}, args=("--num_workers", "2"))
    try:
        r = httpx.post(f"{gw.url}/v1/chat/completions",
                       json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert r.json()["choices"][0]["message"]["content"] == "hi"
    finally:
        gw.stop()


def test_an_unsupported_callback_is_logged_once_with_its_path() -> None:
    config = {**MOCK, "litellm_settings": {"success_callback": ["sentry"],
                                           "failure_callback": ["sentry"],
                                           "callbacks": ["otel"]}}
    gw = start_gateway(config)
    output = gw.stop()
    assert output.count("is not supported by laneway") == 2, output
    assert "litellm_settings.success_callback[0]: callback 'sentry'" in output
    assert "litellm_settings.callbacks[0]: callback 'otel'" in output
