"""A gateway that uses none of the AWS, Cloudflare or Entra ID adapters imports none of them."""

from __future__ import annotations

import json
import subprocess

from tests.support.procs import PYTHON, REPO

MODULES = ("router.providers.sagemaker", "router.providers.cloudflare",
           "router.providers.aws_auth", "router.providers.azure_auth", "router.aws.sts",
           "router.refreshing", "botocore", "xml.etree.ElementTree")
PROBE = ("import sys, json, handler.aws_lambda as h; "
         f"print(json.dumps(sorted(m for m in {MODULES!r} if m in sys.modules)))")


def test_cold_start_imports_no_unused_adapter(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("model_list:\n  - model_name: chat\n    litellm_params:\n"
                      "      model: openai/gpt-4o\n      api_key: sk-test\n")
    result = subprocess.run([PYTHON, "-c", PROBE], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "LANEWAY_LOG_LEVEL":
                                             "WARNING", "CONFIG_FILE_PATH": str(config)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
