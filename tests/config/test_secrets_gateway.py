"""A real gateway whose upstream key lives only in a secret manager: the key reaches the
upstream, a rotated key arrives after the refresh interval without a restart, a manager that
refuses stops the start with a message naming the YAML path and the secret (not its value),
and a name the manager lacks comes from the environment."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.config.conftest import FAKE_AWS, S3Store
from tests.config.test_secrets import put_aws_secret
from tests.support.fake_openai import FakeUpstream, start_fake_openai
from tests.support.fake_secret_managers import FakeVault
from tests.support.gateway import Gateway, clean_env, start_gateway, write_config
from tests.support.procs import PYTHON, REPO

MASTER = "sk-master-secrets-test"


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with start_fake_openai() as fake:
        yield fake


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault(token="gw-root-token") as fake:
        yield fake


def gateway_config(upstream: FakeUpstream, system: str, settings: dict[str, Any]
                   ) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": "chat", "litellm_params": {
            "model": "openai/gpt-4o", "api_base": upstream.url,
            "api_key": "os.environ/UPSTREAM_KEY"}}],
        "general_settings": {"master_key": MASTER, "key_management_system": system,
                             "key_management_settings": settings},
    }


def key_seen(gw: Gateway, upstream: FakeUpstream, marker: str) -> str:
    """Send one chat request; the bearer key the upstream received for it."""
    with gw.client() as client:
        reply = client.post("/v1/chat/completions", json={
            "model": "chat", "messages": [{"role": "user", "content": marker}]})
    assert reply.status_code == 200, reply.text
    mine = [r for r in upstream.requests() if marker in str(r["body"])]
    assert len(mine) == 1
    return str(mine[0]["headers"]["authorization"]).removeprefix("Bearer ")


def test_rotated_key_reaches_the_upstream_without_a_restart(
        upstream: FakeUpstream, vault: FakeVault) -> None:
    vault.secrets["UPSTREAM_KEY"] = "sk-first-key-0001"
    env = {**clean_env(), "VAULT_ADDR": vault.url, "VAULT_TOKEN": "gw-root-token"}
    gw = start_gateway(gateway_config(upstream, "hashicorp_vault", {"refresh_interval": 0.3}),
                       env, key=MASTER)
    gw.secrets += ("sk-first-key-0001", "sk-second-key-0002")
    try:
        assert key_seen(gw, upstream, f"m-{uuid.uuid4().hex}") == "sk-first-key-0001"
        vault.secrets["UPSTREAM_KEY"] = "sk-second-key-0002"
        deadline, seen = time.monotonic() + 15, ""
        while time.monotonic() < deadline:
            seen = key_seen(gw, upstream, f"m-{uuid.uuid4().hex}")
            if seen == "sk-second-key-0002":
                break
            time.sleep(0.1)
        assert seen == "sk-second-key-0002"
        # A manager that stops answering keeps the last good key in service.
        vault.status = 503
        reads = vault.reads
        while vault.reads < reads + 2 and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert key_seen(gw, upstream, f"m-{uuid.uuid4().hex}") == "sk-second-key-0002"
    finally:
        output = gw.stop()
    assert "secret refresh: new values for UPSTREAM_KEY from HashiCorp Vault" in output
    assert "keeping its last value" in output


def test_name_missing_from_the_manager_comes_from_the_environment(
        upstream: FakeUpstream, vault: FakeVault) -> None:
    env = {**clean_env(), "VAULT_ADDR": vault.url, "VAULT_TOKEN": "gw-root-token",
           "UPSTREAM_KEY": "sk-from-environment"}
    gw = start_gateway(gateway_config(upstream, "hashicorp_vault", {}), env, key=MASTER)
    try:
        assert key_seen(gw, upstream, f"m-{uuid.uuid4().hex}") == "sk-from-environment"
    finally:
        gw.stop()
    assert vault.reads == 1


def test_refused_manager_stops_the_start_naming_path_and_secret(
        upstream: FakeUpstream, vault: FakeVault) -> None:
    import subprocess

    vault.secrets["UPSTREAM_KEY"] = "sk-value-never-printed"
    path = write_config(gateway_config(upstream, "hashicorp_vault", {}))
    env = {**clean_env(), "VAULT_ADDR": vault.url, "VAULT_TOKEN": "not-the-token",
           "CONFIG_FILE_PATH": "", "LANEWAY_CONFIG": ""}
    done = subprocess.run([PYTHON, "-m", "handler.cli", "--config", str(path), "--port", "1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert ("model_list[0].litellm_params.api_key: secret UPSTREAM_KEY could not be read from "
            "HashiCorp Vault (permission denied (403))") in done.stderr
    assert "sk-value-never-printed" not in done.stderr + done.stdout
    assert "not-the-token" not in done.stderr + done.stdout


def test_aws_secrets_manager_key_end_to_end(upstream: FakeUpstream, s3_store: S3Store) -> None:
    prefix = f"gw/{uuid.uuid4().hex[:8]}/"
    put_aws_secret(s3_store.endpoint, f"{prefix}UPSTREAM_KEY", "sk-aws-end-to-end")
    env = {**clean_env(), **FAKE_AWS, "AWS_ENDPOINT_URL": s3_store.endpoint}
    gw = start_gateway(gateway_config(upstream, "aws_secret_manager", {"prefix": prefix}),
                       env, key=MASTER)
    gw.secrets += ("sk-aws-end-to-end",)
    try:
        assert key_seen(gw, upstream, f"m-{uuid.uuid4().hex}") == "sk-aws-end-to-end"
    finally:
        gw.stop()
