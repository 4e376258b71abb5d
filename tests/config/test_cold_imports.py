"""The Lambda entry point with its config in a bucket imports neither boto3/botocore nor httpx."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.config.conftest import FAKE_AWS, GcsStore, S3Store
from tests.support.procs import PYTHON, REPO

CONFIG = (b"model_list:\n  - model_name: chat\n    litellm_params:\n"
          b"      model: openai/gpt-4o\n      api_key: sk-test\n")
PROBE = ("import sys, json, handler.aws_lambda as h; "
         "print(json.dumps({'models': h.app.state.router.model_names(), "
         "'heavy': sorted(m for m in ('boto3', 'botocore', 'httpx') if m in sys.modules)}))")


def _import_lambda(environ: dict[str, str]) -> dict[str, object]:
    result = subprocess.run([PYTHON, "-c", PROBE], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "LANEWAY_LOG_LEVEL":
                                             "WARNING", "AWS_LAMBDA_FUNCTION_NAME": "cold",
                                             **environ})
    assert result.returncode == 0, result.stderr
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def test_s3_config_imports_no_sdk(s3_store: S3Store) -> None:
    bucket = f"cold-{uuid.uuid4().hex[:8]}"
    s3_store.put(bucket, "proxy.yaml", CONFIG)
    out = _import_lambda({**FAKE_AWS, "AWS_ENDPOINT_URL_S3": s3_store.endpoint,
                          "LITELLM_CONFIG_BUCKET_NAME": bucket,
                          "LITELLM_CONFIG_BUCKET_OBJECT_KEY": "proxy.yaml"})
    assert out == {"models": ["chat"], "heavy": []}


def test_gcs_config_imports_no_httpx(gcs_store: GcsStore) -> None:
    bucket = f"cold-{uuid.uuid4().hex[:8]}"
    gcs_store.put(bucket, "proxy.yaml", CONFIG)
    out = _import_lambda({"STORAGE_EMULATOR_HOST": gcs_store.host,
                          "LANEWAY_CONFIG": f"gs://{bucket}/proxy.yaml"})
    assert out == {"models": ["chat"], "heavy": []}


@pytest.mark.parametrize("missing", ["bucket", "key"])
def test_missing_object_exits_2_with_one_message(s3_store: S3Store, missing: str) -> None:
    bucket = f"cold-{uuid.uuid4().hex[:8]}"
    if missing == "key":
        s3_store.put(bucket, "other.yaml", CONFIG)
    result = subprocess.run(
        [PYTHON, "-m", "handler.cli", "--config", f"s3://{bucket}/proxy.yaml", "--port", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", **FAKE_AWS, "AWS_ENDPOINT_URL_S3": s3_store.endpoint})
    assert result.returncode == 2, result.stderr
    assert f"config object s3://{bucket}/proxy.yaml not found (no such {missing})" in (
        result.stderr + result.stdout)
    assert "Traceback" not in result.stderr
