"""Where the config is read from: files, S3 (moto server), GCS (emulator process), env settings."""

from __future__ import annotations

import re
import subprocess
import textwrap
import uuid
from pathlib import Path

import pytest

from router.config import load_config
from router.errors import ConfigError
from tests.config.conftest import FIXTURES, GcsStore, S3Store
from tests.support.procs import PYTHON, REPO, free_port

CONFIG = b"""\
model_list:
  - model_name: chat
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
router_settings:
  routing_strategy: least-busy
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- files and choosing the source -------------------------------------------------------------


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"config file {missing} not found"):
        load_config(str(missing), environ={})


def test_bad_yaml_reports_file_and_line() -> None:
    path = FIXTURES / "unquoted_wildcard.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), environ={})
    message = str(caught.value)
    assert message.startswith(f"invalid YAML in {path} at line 5, column ")
    assert 'must be quoted, e.g. model_name: "*"' in message


def test_yaml_error_does_not_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("general_settings:\n  master_key: sk-do-not-print\n   bad: [\n")
    with pytest.raises(ConfigError, match="line 3") as caught:
        load_config(str(path), environ={})
    assert "sk-do-not-print" not in str(caught.value)


@pytest.mark.parametrize("body", ["", "# only a comment\n", "~\n"])
def test_empty_file_is_an_error(tmp_path: Path, body: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError, match=f"config {path} is empty"):
        load_config(str(path), environ={})


def test_file_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- model_name: chat\n")
    with pytest.raises(ConfigError, match=f"config {path} must be a mapping"):
        load_config(str(path), environ={})


def test_unquoted_dates_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "azure.yaml"
    path.write_text("model_list:\n  - model_name: a\n    litellm_params:\n"
                    "      model: azure/gpt-4o\n      api_version: 2024-02-01\n")
    config = load_config(str(path), environ={})
    assert config.model_list[0].litellm_params.api_version == "2024-02-01"


def write(tmp_path: Path, name: str, strategy: str) -> str:
    path = tmp_path / name
    path.write_text(f"router_settings:\n  routing_strategy: {strategy}\n")
    return str(path)


def test_source_order_explicit_then_config_file_path_then_laneway_config(tmp_path: Path) -> None:
    explicit = write(tmp_path, "a.yaml", "least-busy")
    file_path = write(tmp_path, "b.yaml", "latency-based-routing")
    laneway = write(tmp_path, "c.yaml", "usage-based-routing-v2")
    environ = {"CONFIG_FILE_PATH": file_path, "LANEWAY_CONFIG": laneway,
               "LITELLM_CONFIG_BUCKET_NAME": "ignored", "LITELLM_CONFIG_BUCKET_OBJECT_KEY": "x"}

    def strategy(source: str | None, env: dict[str, str]) -> str:
        return load_config(source, environ=env).router_settings.routing_strategy

    assert strategy(explicit, environ) == "least-busy"
    assert strategy(None, environ) == "latency-based-routing"
    del environ["CONFIG_FILE_PATH"]
    assert strategy(None, environ) == "usage-based-routing-v2"


def test_no_source_explains_how_to_give_one() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(environ={})
    message = str(caught.value)
    for hint in ("CONFIG_FILE_PATH", "LANEWAY_CONFIG", "LITELLM_CONFIG_BUCKET_TYPE", "s3://"):
        assert hint in message


@pytest.mark.parametrize(("environ", "expected"), [
    ({"LITELLM_CONFIG_BUCKET_TYPE": "azure", "LITELLM_CONFIG_BUCKET_NAME": "b",
      "LITELLM_CONFIG_BUCKET_OBJECT_KEY": "k"}, "must be 's3' or 'gcs', not 'azure'"),
    ({"LITELLM_CONFIG_BUCKET_TYPE": "gcs", "LITELLM_CONFIG_BUCKET_NAME": "b"},
     "LITELLM_CONFIG_BUCKET_NAME and LITELLM_CONFIG_BUCKET_OBJECT_KEY must both be set"),
])
def test_incomplete_bucket_settings(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_config(environ=environ)


def test_bucket_uri_without_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="must look like s3://bucket/key"):
        load_config("s3://only-bucket", environ={})


# --- S3 -----------------------------------------------------------------------------------------


def test_s3_object_via_uri(s3_store: S3Store) -> None:
    bucket = unique("cfg")
    s3_store.put(bucket, "team/proxy.yaml", CONFIG)
    config = load_config(f"s3://{bucket}/team/proxy.yaml",
                         environ=s3_store.environ(OPENAI_API_KEY="sk-s3"))
    assert config.model_list[0].litellm_params.api_key == "sk-s3"
    assert config.router_settings.routing_strategy == "least-busy"


def test_s3_object_via_litellm_bucket_settings(s3_store: S3Store) -> None:
    bucket = unique("cfg")
    s3_store.put(bucket, "proxy_config.yaml", CONFIG)
    environ = s3_store.environ(LITELLM_CONFIG_BUCKET_TYPE="s3", LITELLM_CONFIG_BUCKET_NAME=bucket,
                               LITELLM_CONFIG_BUCKET_OBJECT_KEY="proxy_config.yaml")
    config = load_config(environ=environ)
    assert config.model_list[0].model_name == "chat"
    # LiteLLM treats a bucket without a type as S3; so does laneway.
    del environ["LITELLM_CONFIG_BUCKET_TYPE"]
    assert load_config(environ=environ).model_list[0].model_name == "chat"


def test_s3_missing_bucket(s3_store: S3Store) -> None:
    bucket = unique("absent")
    with pytest.raises(ConfigError, match=rf"config object s3://{bucket}/k.yaml not found \(no "
                                          r"such bucket\)"):
        load_config(f"s3://{bucket}/k.yaml", environ=s3_store.environ())


def test_s3_missing_key(s3_store: S3Store) -> None:
    bucket = unique("cfg")
    s3_store.put(bucket, "other.yaml", CONFIG)
    with pytest.raises(ConfigError, match=rf"config object s3://{bucket}/k.yaml not found \(no "
                                          r"such key\)"):
        load_config(f"s3://{bucket}/k.yaml", environ=s3_store.environ())


def test_s3_unreachable_endpoint() -> None:
    environ = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(ConfigError, match=re.escape("cannot reach S3 to read config object s3://b/k.yaml")):
        load_config("s3://b/k.yaml", environ=environ)


def test_boto3_is_not_imported_for_a_file_config() -> None:
    script = textwrap.dedent(f"""
        import sys
        import router.config
        config = router.config.load_config({str(FIXTURES / "quickstart.yaml")!r},
                                           environ={{"AZURE_API_KEY_EU": "k"}})
        assert config.model_list, "config did not load"
        print(sorted(m for m in ("boto3", "botocore") if m in sys.modules))
    """)
    result = subprocess.run([PYTHON, "-c", script], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- GCS ----------------------------------------------------------------------------------------


def test_gcs_object_via_uri(gcs_store: GcsStore) -> None:
    bucket = unique("cfg")
    gcs_store.put(bucket, "dir/proxy config.yaml", CONFIG)
    config = load_config(f"gs://{bucket}/dir/proxy config.yaml",
                         environ={"STORAGE_EMULATOR_HOST": gcs_store.host,
                                  "OPENAI_API_KEY": "sk-gcs"})
    assert config.model_list[0].litellm_params.api_key == "sk-gcs"


def test_gcs_object_via_litellm_bucket_settings(gcs_store: GcsStore) -> None:
    bucket = unique("litellm-proxy")
    gcs_store.put(bucket, "proxy_config.yaml", CONFIG)
    config = load_config(environ={
        "STORAGE_EMULATOR_HOST": f"http://{gcs_store.host}",
        "LITELLM_CONFIG_BUCKET_TYPE": "gcs",
        "LITELLM_CONFIG_BUCKET_NAME": bucket,
        "LITELLM_CONFIG_BUCKET_OBJECT_KEY": "proxy_config.yaml",
    })
    assert config.router_settings.routing_strategy == "least-busy"


def test_gcs_missing_object(gcs_store: GcsStore) -> None:
    bucket = unique("cfg")
    gcs_store.put(bucket, "present.yaml", CONFIG)
    environ = {"STORAGE_EMULATOR_HOST": gcs_store.host}
    for uri in (f"gs://{bucket}/absent.yaml", "gs://no-such-bucket/a.yaml"):
        with pytest.raises(ConfigError, match=re.escape(f"config object {uri} not found")):
            load_config(uri, environ=environ)


def test_gcs_unreachable_emulator() -> None:
    environ = {"STORAGE_EMULATOR_HOST": f"127.0.0.1:{free_port()}"}
    with pytest.raises(ConfigError, match=re.escape("cannot reach GCS to read config object gs://b/k.yaml")):
        load_config("gs://b/k.yaml", environ=environ)


def test_gcs_without_emulator_needs_the_metadata_server() -> None:
    # Outside Google Cloud there is no metadata server to hand out a token.
    environ = {"GCE_METADATA_HOST": f"127.0.0.1:{free_port()}"}
    with pytest.raises(ConfigError, match="no access token from the GCP metadata server"):
        load_config("gs://b/k.yaml", environ=environ)
