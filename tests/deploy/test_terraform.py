"""infra/: formatting, `terraform validate` and `terraform test` for AWS, structure checks for GCP.

The AWS module is initialised from the machine's offline provider mirror (no registry access);
its own `terraform test` suite (infra/aws/tests) then plans and applies it against a mocked
provider. There is no mirror for the google provider, so infra/gcp is read with python-hcl2 and
its variable validations are run by Terraform on the variables file alone (no provider needed).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import tools

INFRA = tools.REPO / "infra"


def cli_config(directory: Path, mirror: Path | None) -> dict[str, str]:
    """A Terraform CLI config that installs hashicorp/aws from the mirror and nothing else."""
    path = directory / "offline.tfrc"
    if mirror is None:
        path.write_text("")
    else:
        path.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n'
            '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n'
            '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
        )
    return {"TF_CLI_CONFIG_FILE": str(path), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}


def test_terraform_fmt_is_clean() -> None:
    result = tools.run([tools.terraform(), "fmt", "-check", "-recursive", "-diff", INFRA])
    assert result.returncode == 0, tools.explain(result)


@pytest.fixture(scope="module")
def aws_module(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of infra/aws, initialised offline (the copy keeps .terraform out of the repo)."""
    terraform, mirror = tools.terraform(), tools.terraform_aws_mirror()
    work = tmp_path_factory.mktemp("tf-aws")
    module = work / "aws"
    shutil.copytree(INFRA / "aws", module, ignore=shutil.ignore_patterns(".terraform*"))
    env = cli_config(work, mirror)
    result = tools.run([terraform, "init", "-backend=false", "-input=false", "-no-color"],
                       cwd=module, env=env)
    assert result.returncode == 0, tools.explain(result)
    return module, env


def test_aws_module_validates(aws_module: tuple[Path, dict[str, str]]) -> None:
    module, env = aws_module
    result = tools.run([tools.terraform(), "validate", "-no-color"], cwd=module, env=env)
    assert result.returncode == 0, tools.explain(result)


def test_aws_module_behaves_under_terraform_test(aws_module: tuple[Path, dict[str, str]]) -> None:
    module, env = aws_module
    result = tools.run([tools.terraform(), "test", "-no-color"], cwd=module, env=env)
    assert result.returncode == 0, tools.explain(result)
    assert re.search(r"Success! [1-9][0-9]* passed, 0 failed", result.stdout), result.stdout


# ---- infra/gcp, read as data -------------------------------------------------------------


def _unquote(value: Any) -> Any:
    """python-hcl2 8 keeps HCL's quotes around strings and keys; older versions drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if k != "__comments__"}
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    return value


def load_module(directory: Path) -> dict[str, dict[str, Any]]:
    """Blocks of every .tf file: {"resource": {"type.name": body}, "variable": {name: body}...}."""
    hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is needed to read infra/gcp")
    module: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            parsed = _unquote(hcl2.load(handle))
        for kind, blocks in parsed.items():
            for block in blocks if isinstance(blocks, list) else [blocks]:
                for name, body in block.items():
                    if kind in ("resource", "data"):
                        for label, inner in body.items():
                            module.setdefault(kind, {})[f"{name}.{label}"] = inner
                    else:
                        module.setdefault(kind, {})[name] = body
    return module


def first(block: Any) -> dict[str, Any]:
    """A nested block, whichever list-or-dict shape the parser gave it."""
    return dict(block[0] if isinstance(block, list) else block)


@pytest.fixture(scope="module")
def gcp() -> dict[str, dict[str, Any]]:
    return load_module(INFRA / "gcp")


def test_gcp_cloud_run_service_scales_to_zero_with_timeout_and_concurrency(
    gcp: dict[str, dict[str, Any]],
) -> None:
    service = gcp["resource"]["google_cloud_run_v2_service.laneway"]
    template = first(service["template"])
    assert template["max_instance_request_concurrency"] == "${var.concurrency}"
    assert template["timeout"] == "${var.request_timeout_seconds}s"
    assert template["service_account"] == "${google_service_account.laneway.email}"
    assert first(template["scaling"])["min_instance_count"] == "${var.min_instances}"
    variables = gcp["variable"]
    assert variables["min_instances"]["default"] == 0
    assert variables["request_timeout_seconds"]["default"] <= 3600
    container = first(template["containers"])
    assert container["image"] == "${var.image}"
    assert first(container["ports"])["container_port"] == 8080
    probes = {first(first(container[p])["http_get"])["path"]
              for p in ("startup_probe", "liveness_probe")}
    assert probes == {"/health/readiness", "/health/liveliness"}
    vpc = first(first(template["dynamic"])["vpc_access"])["content"]
    assert first(vpc)["connector"] == "${google_vpc_access_connector.laneway[0].id}"


def test_gcp_secrets_reach_the_container_by_reference(gcp: dict[str, dict[str, Any]]) -> None:
    text = (INFRA / "gcp" / "main.tf").read_text()
    assert "secret_key_ref" in text and 'version = "latest"' in text
    assert 'LANEWAY_CONFIG      = "gs://' in text
    assert set(gcp["variable"]["master_key_secret_id"]) >= {"description", "type", "default"}
    assert gcp["variable"]["master_key_secret_id"]["default"] is None


def test_gcp_memorystore_has_auth_and_tls_behind_a_connector(
    gcp: dict[str, dict[str, Any]],
) -> None:
    redis = gcp["resource"]["google_redis_instance.lanes"]
    assert redis["auth_enabled"] is True
    assert redis["transit_encryption_mode"] == "SERVER_AUTHENTICATION"
    assert redis["connect_mode"] == "DIRECT_PEERING"
    connector = gcp["resource"]["google_vpc_access_connector.laneway"]
    assert connector["ip_cidr_range"] == "${var.connector_cidr}"
    url = gcp["resource"]["google_secret_manager_secret_version.redis_url"]["secret_data"]
    assert "rediss://" in url and "ssl_ca_certs" in url


def test_gcp_service_account_reads_only_the_config_object(
    gcp: dict[str, dict[str, Any]],
) -> None:
    grants = {k: v for k, v in gcp["resource"].items() if "iam_member" in k or "iam_binding" in k}
    storage = {k: v for k, v in grants.items() if k.startswith("google_storage_bucket_iam")}
    assert list(storage) == ["google_storage_bucket_iam_member.read_config_object"]
    grant = storage["google_storage_bucket_iam_member.read_config_object"]
    assert grant["role"] == "roles/storage.objectViewer"
    condition = first(grant["condition"])["expression"]
    assert "/objects/${google_storage_bucket_object.config.name}" in condition
    assert not any(k.startswith("google_project_iam") for k in gcp["resource"])
    assert gcp["resource"]["google_storage_bucket_object.config"]["source"] == "${var.config_file}"


def test_gcp_variables_and_outputs_are_documented(gcp: dict[str, dict[str, Any]]) -> None:
    for name, body in gcp["variable"].items():
        assert body.get("description"), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
    validated = {name for name, body in gcp["variable"].items() if "validation" in body}
    assert {"concurrency", "request_timeout_seconds", "min_instances", "image",
            "redis_mode", "connector_cidr"} <= validated
    for name, body in gcp["output"].items():
        assert body.get("description"), f"output {name} has no description"
    assert {"service_url", "redis_host", "config_object"} <= set(gcp["output"])


def test_gcp_variable_validations_reject_bad_values(tmp_path: Path) -> None:
    """Terraform evaluates the validations itself: no provider is needed for a variables file."""
    terraform = tools.terraform()
    shutil.copy(INFRA / "gcp" / "variables.tf", tmp_path / "variables.tf")
    env = cli_config(tmp_path, None)
    init = tools.run([terraform, "init", "-input=false", "-no-color"], cwd=tmp_path, env=env)
    assert init.returncode == 0, tools.explain(init)

    def plan(**values: str) -> tuple[int, str]:
        args = [f"-var={k}={v}" for k, v in values.items()]
        result = tools.run([terraform, "plan", "-input=false", "-no-color", *args],
                           cwd=tmp_path, env=env)
        return result.returncode, " ".join((result.stdout + result.stderr).split())

    good = {"project_id": "laneway-test-1", "config_file": "config.yaml",
            "image": "europe-west1-docker.pkg.dev/laneway-test-1/laneway/laneway:0.1.0"}
    code, output = plan(**good)
    assert code == 0, output

    code, output = plan(**{**good, "concurrency": "0", "request_timeout_seconds": "3601",
                           "min_instances": "-1", "connector_cidr": "10.8.0.0/24",
                           "image": "laneway", "redis_mode": "elasticache"})
    assert code != 0
    for message in ("concurrency must be between 1 and 1000",
                    "request_timeout_seconds must be between 1 and 3600",
                    "min_instances cannot be negative", "connector_cidr must be a /28",
                    "image must be a full image reference", "redis_mode must be none"):
        assert message in output, output


def test_gcp_named_secrets_are_readable_and_nothing_more(gcp: dict[str, dict[str, Any]]) -> None:
    grant = gcp["resource"]["google_secret_manager_secret_iam_member.read_named"]
    assert grant["for_each"] == "${toset(var.secret_manager_secret_ids)}"
    assert grant["secret_id"] == "${each.value}"
    assert grant["role"] == "roles/secretmanager.secretAccessor"
    assert grant["member"] == "serviceAccount:${google_service_account.laneway.email}"
    variable = gcp["variable"]["secret_manager_secret_ids"]
    assert variable["default"] == [] and "validation" in variable
    text = (INFRA / "gcp" / "main.tf").read_text()
    assert "GOOGLE_SECRET_MANAGER_PROJECT_ID = var.project_id" in text
