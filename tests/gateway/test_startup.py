"""Starting the `laneway` command: clear errors for bad configs, options from the environment."""

from __future__ import annotations

import subprocess

import httpx

from tests.support.gateway import start_gateway, write_config
from tests.support.procs import PYTHON, REPO

MOCK = {"model_list": [{"model_name": "m", "litellm_params": {"model": "gpt-4o",
                                                               "mock_response": "hi"}}]}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([PYTHON, "-m", "handler.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=60)


def test_bad_yaml_is_one_clear_error() -> None:
    path = write_config("model_list:\n  - model_name: x\n   litellm_params: [\n")
    result = run_cli("--config", str(path), "--port", "1")
    assert result.returncode == 2
    assert "line" in result.stderr and "Traceback" not in result.stderr


def test_missing_env_var_names_the_yaml_path() -> None:
    path = write_config({"model_list": [{"model_name": "x", "litellm_params": {
        "model": "os.environ/SURELY_UNSET_LANEWAY_VAR"}}]})
    result = run_cli("--config", str(path), "--port", "1")
    assert result.returncode == 2
    assert "model_list[0].litellm_params.model" in result.stderr
    assert "SURELY_UNSET_LANEWAY_VAR" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_no_config() -> None:
    result = run_cli("--config", "/nonexistent/laneway.yaml", "--port", "1")
    assert result.returncode == 2 and "/nonexistent/laneway.yaml" in result.stderr
    result = run_cli("--port", "1", env={"CONFIG_FILE_PATH": "", "LANEWAY_CONFIG": "",
                                         "LITELLM_CONFIG_BUCKET_NAME": ""})
    assert result.returncode == 2 and "config" in result.stderr.lower()


def test_config_file_path_env_and_no_docs() -> None:
    path = write_config(MOCK)
    gw = start_gateway(MOCK, {"NO_DOCS": "True", "CONFIG_FILE_PATH": str(path)})
    try:
        assert httpx.get(f"{gw.url}/docs").status_code == 404
        r = httpx.post(f"{gw.url}/chat/completions",
                       json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert r.json()["choices"][0]["message"]["content"] == "hi"
    finally:
        gw.stop()


def test_master_key_from_environment() -> None:
    gw = start_gateway(MOCK, {"LANEWAY_MASTER_KEY": "sk-env-key-123"}, key="sk-env-key-123")
    try:
        assert httpx.get(f"{gw.url}/v1/models").status_code == 401
        assert httpx.get(f"{gw.url}/v1/models", headers=gw.headers()).status_code == 200
    finally:
        gw.stop()


def test_several_workers_serve_the_same_config() -> None:
    # Without Redis each worker keeps its own limits; the flag says that is what is wanted.
    gw = start_gateway(MOCK, args=("--num_workers", "2", "--allow_per_worker_state"))
    try:
        for _ in range(6):
            r = httpx.post(f"{gw.url}/v1/chat/completions",
                           json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
            assert r.json()["choices"][0]["message"]["content"] == "hi"
    finally:
        gw.stop()
