"""Config values read from a secret manager, against real servers: moto's AWS Secrets Manager
and loopback fakes of Google Secret Manager, Azure Key Vault and Vault that check credentials."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from router.config import Config, parse_config
from router.errors import ConfigError
from tests.config.conftest import FAKE_AWS, S3Store
from tests.support.fake_secret_managers import (
    FakeAzureKeyVault,
    FakeGoogleSecretManager,
    FakeVault,
)
from tests.support.procs import PYTHON, REPO


def config(system: str, settings: dict[str, Any] | None = None, *,
           api_key: str = "os.environ/UPSTREAM_KEY", **general: Any) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": "chat", "litellm_params": {
            "model": "openai/gpt-4o", "api_key": api_key,
            "api_base": "os.environ/UPSTREAM_BASE"}}],
        "general_settings": {"key_management_system": system,
                             "key_management_settings": settings or {}, **general},
    }


def api_key(cfg: Config) -> str | None:
    return cfg.model_list[0].litellm_params.api_key


def problems(doc: dict[str, Any], environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(doc, environ=environ)
    return str(caught.value)


# -- HashiCorp Vault ---------------------------------------------------------------------------

@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault(token="root-token") as fake:
        yield fake


def vault_env(fake: FakeVault, **extra: str) -> dict[str, str]:
    return {"VAULT_ADDR": fake.url, "VAULT_TOKEN": "root-token", **extra}


def test_vault_value_replaces_the_reference_and_wins_over_the_environment(
        vault: FakeVault) -> None:
    vault.secrets.update(UPSTREAM_KEY="sk-vault-1", UPSTREAM_BASE="http://upstream.test/v1")
    cfg = parse_config(config("hashicorp_vault"),
                       environ=vault_env(vault, UPSTREAM_KEY="sk-env-loses"))
    assert api_key(cfg) == "sk-vault-1"
    assert cfg.model_list[0].litellm_params.api_base == "http://upstream.test/v1"
    assert vault.reads == 2


def test_vault_missing_name_falls_back_to_the_environment(vault: FakeVault) -> None:
    vault.secrets["UPSTREAM_BASE"] = "http://upstream.test/v1"
    cfg = parse_config(config("hashicorp_vault"), environ=vault_env(vault, UPSTREAM_KEY="sk-env"))
    assert api_key(cfg) == "sk-env"


def test_missing_everywhere_names_the_path_and_the_secret(vault: FakeVault) -> None:
    vault.secrets["UPSTREAM_BASE"] = "http://upstream.test/v1"
    message = problems(config("hashicorp_vault"), vault_env(vault))
    assert ("model_list[0].litellm_params.api_key: secret UPSTREAM_KEY not found in HashiCorp "
            "Vault and UPSTREAM_KEY is not set in the environment") in message


def test_denied_read_is_an_error_without_the_value_or_the_token(vault: FakeVault) -> None:
    vault.secrets.update(UPSTREAM_KEY="sk-never-shown", UPSTREAM_BASE="x")
    message = problems(config("hashicorp_vault"), vault_env(vault, VAULT_TOKEN="wrong-token"))
    assert "model_list[0].litellm_params.api_key: secret UPSTREAM_KEY could not be read " \
           "from HashiCorp Vault (permission denied (403))" in message
    assert "sk-never-shown" not in message and "wrong-token" not in message
    assert vault.denied == 2


def test_unreachable_manager_falls_back_to_environment_values(vault: FakeVault) -> None:
    env = {"VAULT_ADDR": "http://127.0.0.1:9", "VAULT_TOKEN": "t", "UPSTREAM_KEY": "sk-env",
           "UPSTREAM_BASE": "http://b/v1"}
    cfg = parse_config(config("hashicorp_vault", {"timeout": 1}), environ=env)
    assert api_key(cfg) == "sk-env"


def test_a_value_that_fails_validation_is_not_quoted(vault: FakeVault) -> None:
    vault.secrets.update(UPSTREAM_KEY="k", UPSTREAM_BASE="b", REDIS_PORT="port-sk-secret-9")
    doc = config("hashicorp_vault")
    doc["router_settings"] = {"redis_host": "localhost", "redis_port": "os.environ/REDIS_PORT"}
    message = problems(doc, vault_env(vault))
    assert "router_settings.redis_port" in message and "port-sk-secret-9" not in message


def test_hosted_keys_limit_what_is_asked(vault: FakeVault) -> None:
    vault.secrets.update(UPSTREAM_KEY="sk-vault", UPSTREAM_BASE="http://vault-base/v1")
    cfg = parse_config(config("hashicorp_vault", {"hosted_keys": ["UPSTREAM_KEY"]}),
                       environ=vault_env(vault, UPSTREAM_BASE="http://env-base/v1"))
    assert api_key(cfg) == "sk-vault"
    assert cfg.model_list[0].litellm_params.api_base == "http://env-base/v1"
    assert vault.reads == 1


def test_write_only_reads_nothing(vault: FakeVault) -> None:
    vault.secrets["UPSTREAM_KEY"] = "sk-vault"
    cfg = parse_config(config("hashicorp_vault", {"access_mode": "write_only"}),
                       environ=vault_env(vault, UPSTREAM_KEY="sk-env", UPSTREAM_BASE="b"))
    assert api_key(cfg) == "sk-env" and vault.reads == 0


def test_vault_approle_namespace_mount_and_prefixes() -> None:
    with FakeVault(approle=("role-1", "secret-1"), namespace="team-a", mount="kv") as fake:
        fake.secrets.update({"laneway/prod-UPSTREAM_KEY": "sk-approle",
                             "laneway/prod-UPSTREAM_BASE": "http://b/v1"})
        env = {"VAULT_ADDR": fake.url, "VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "secret-1",
               "VAULT_NAMESPACE": "team-a", "HCP_VAULT_MOUNT_NAME": "kv",
               "HCP_VAULT_PATH_PREFIX": "laneway"}
        cfg = parse_config(config("hashicorp_vault", {"prefix": "prod-"}), environ=env)
        assert api_key(cfg) == "sk-approle"
        assert fake.logins == 1  # one login for the whole batch


def test_primary_secret_name_reads_one_json_secret(vault: FakeVault) -> None:
    vault.secrets["laneway"] = '{"UPSTREAM_KEY": "sk-json", "UPSTREAM_BASE": "http://j/v1"}'
    cfg = parse_config(config("hashicorp_vault", {"primary_secret_name": "laneway"}),
                       environ=vault_env(vault))
    assert api_key(cfg) == "sk-json" and vault.reads == 1


def test_unknown_manager_is_a_config_error() -> None:
    message = problems(config("aws_kms"), {"UPSTREAM_KEY": "k", "UPSTREAM_BASE": "b"})
    assert "general_settings.key_management_system: key_management_system must be one of" \
        in message


# -- Google Secret Manager ---------------------------------------------------------------------

@pytest.fixture
def gcp() -> Iterator[FakeGoogleSecretManager]:
    with FakeGoogleSecretManager() as fake:
        yield fake


def gcp_settings(fake: FakeGoogleSecretManager) -> tuple[dict[str, Any], dict[str, str]]:
    return {"api_base": fake.url}, {"GCE_METADATA_HOST": fake.hostport}


def test_gcp_reads_with_the_metadata_token_once_for_a_batch(
        gcp: FakeGoogleSecretManager) -> None:
    settings, env = gcp_settings(gcp)
    doc = config("google_secret_manager", settings)
    names = [f"KEY_{i}" for i in range(20)]
    doc["model_list"] = [{"model_name": f"m{i}", "litellm_params": {
        "model": "openai/x", "api_key": f"os.environ/{n}"}} for i, n in enumerate(names)]
    gcp.secrets.update({n: f"sk-{n}" for n in names})
    cfg = parse_config(doc, environ=env)
    assert [e.litellm_params.api_key for e in cfg.model_list] == [f"sk-{n}" for n in names]
    assert gcp.token_requests == 1 and gcp.reads == 20


def test_gcp_name_the_manager_cannot_hold(gcp: FakeGoogleSecretManager) -> None:
    settings, env = gcp_settings(gcp)
    message = problems(config("google_secret_manager", settings,
                              api_key="os.environ/team.key"), env)
    assert ("model_list[0].litellm_params.api_key: secret name team.key cannot be read from "
            "Google Secret Manager") in message


# -- Azure Key Vault ---------------------------------------------------------------------------

def test_azure_client_credentials_and_name_mapping() -> None:
    with FakeAzureKeyVault(client=("app-id", "app-secret")) as fake:
        fake.secrets.update({"UPSTREAM-KEY": "sk-azure", "UPSTREAM-BASE": "http://a/v1"})
        env = {"AZURE_KEY_VAULT_URI": fake.url, "AZURE_AUTHORITY_HOST": fake.url,
               "AZURE_TENANT_ID": "fake-tenant", "AZURE_CLIENT_ID": "app-id",
               "AZURE_CLIENT_SECRET": "app-secret"}
        cfg = parse_config(config("azure_key_vault"), environ=env)
        assert api_key(cfg) == "sk-azure" and fake.token_sources == ["client"]


def test_azure_managed_identity_endpoint() -> None:
    with FakeAzureKeyVault(identity_header="id-header-1") as fake:
        fake.secrets.update({"UPSTREAM-KEY": "sk-msi", "UPSTREAM-BASE": "http://a/v1"})
        env = {"AZURE_KEY_VAULT_URI": fake.url, "IDENTITY_ENDPOINT": f"{fake.url}/msi/token",
               "IDENTITY_HEADER": "id-header-1"}
        cfg = parse_config(config("azure_key_vault"), environ=env)
        assert api_key(cfg) == "sk-msi" and fake.token_sources == ["identity"]


def test_azure_imds() -> None:
    with FakeAzureKeyVault() as fake:
        fake.secrets.update({"UPSTREAM-KEY": "sk-imds", "UPSTREAM-BASE": "http://a/v1"})
        env = {"AZURE_KEY_VAULT_URI": fake.url, "AZURE_POD_IDENTITY_AUTHORITY_HOST": fake.url}
        cfg = parse_config(config("azure_key_vault"), environ=env)
        assert api_key(cfg) == "sk-imds" and fake.token_sources == ["imds"]


def test_azure_refused_client_secret_names_the_token_source() -> None:
    with FakeAzureKeyVault(client=("app-id", "right")) as fake:
        env = {"AZURE_KEY_VAULT_URI": fake.url, "AZURE_AUTHORITY_HOST": fake.url,
               "AZURE_TENANT_ID": "fake-tenant", "AZURE_CLIENT_ID": "app-id",
               "AZURE_CLIENT_SECRET": "wrong-secret-value"}
        message = problems(config("azure_key_vault"), env)
        assert "the Entra ID token endpoint gave no token (HTTP 401)" in message
        assert "wrong-secret-value" not in message


# -- AWS Secrets Manager (moto) ----------------------------------------------------------------

def put_aws_secret(endpoint: str, name: str, value: str) -> None:
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    try:
        try:
            client.create_secret(Name=name, SecretString=value)
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=name, SecretString=value)
    finally:
        client.close()


def test_aws_secrets_manager(s3_store: S3Store) -> None:
    prefix = f"laneway/{uuid.uuid4().hex[:8]}/"
    put_aws_secret(s3_store.endpoint, f"{prefix}UPSTREAM_KEY", "sk-aws")
    env = {**FAKE_AWS, "AWS_ENDPOINT_URL_SECRETS_MANAGER": s3_store.endpoint,
           "UPSTREAM_BASE": "http://env-base/v1"}
    cfg = parse_config(config("aws_secret_manager", {"prefix": prefix}), environ=env)
    assert api_key(cfg) == "sk-aws"
    assert cfg.model_list[0].litellm_params.api_base == "http://env-base/v1"  # not in AWS


def test_aws_missing_secret_names_the_path(s3_store: S3Store) -> None:
    env = {**FAKE_AWS, "AWS_ENDPOINT_URL": s3_store.endpoint, "UPSTREAM_BASE": "b"}
    message = problems(config("aws_secret_manager", {"prefix": "nowhere/"}), env)
    assert ("model_list[0].litellm_params.api_key: secret nowhere/UPSTREAM_KEY not found in "
            "AWS Secrets Manager and UPSTREAM_KEY is not set in the environment") in message


def test_aws_reads_import_no_sdk(s3_store: S3Store) -> None:
    prefix = f"cold/{uuid.uuid4().hex[:8]}/"
    put_aws_secret(s3_store.endpoint, f"{prefix}UPSTREAM_KEY", "sk-lean")
    probe = (
        "import sys; from router.config import parse_config; "
        "doc = {'model_list': [{'model_name': 'c', 'litellm_params': {'model': 'openai/x', "
        "'api_key': 'os.environ/UPSTREAM_KEY'}}], 'general_settings': {"
        f"'key_management_system': 'aws_secret_manager', 'key_management_settings': "
        f"{{'prefix': '{prefix}'}}}}}}; "
        "cfg = parse_config(doc); "
        "print(cfg.model_list[0].litellm_params.api_key, "
        "sorted(m for m in ('boto3', 'botocore', 'httpx') if m in sys.modules))")
    env = {"PATH": "/usr/bin:/bin", **FAKE_AWS, "AWS_ENDPOINT_URL": s3_store.endpoint}
    out = subprocess.run([PYTHON, "-c", probe], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sk-lean", "[]"]


def test_no_manager_imports_nothing_of_router_secrets() -> None:
    probe = ("import sys; from router.config import parse_config; parse_config({'model_list': "
             "[{'model_name': 'c', 'litellm_params': {'model': 'openai/x', 'api_key': 'k'}}]}); "
             "print(any(m.startswith('router.secrets') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
