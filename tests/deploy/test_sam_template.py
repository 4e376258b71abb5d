"""template.yaml: linted as written and after the SAM transform, and read for what it promises.

`sam validate --lint` checks the SAM document; cfn-lint then checks the CloudFormation the SAM
translator expands it into, where `AWS::Lambda::Url.InvokeMode` and friends are ordinary resource
properties with a schema. The last tests read the expanded template the way a reviewer would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import tools

TEMPLATE = tools.REPO / "template.yaml"


def expand(template: Path) -> dict[str, Any]:
    result = tools.run([tools.deploy_python(), tools.HERE / "sam_transform.py", template])
    assert result.returncode == 0, tools.explain(result)
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def expanded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    template = expand(TEMPLATE)
    path = tmp_path_factory.mktemp("sam") / "expanded.json"
    path.write_text(json.dumps(template, indent=1))
    return template, path


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_sam_validate_lint_passes() -> None:
    result = tools.run([tools.sam(), "validate", "--lint", "--template", TEMPLATE])
    assert result.returncode == 0, tools.explain(result)
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint_passes_on_the_expanded_template(expanded: tuple[dict[str, Any], Path]) -> None:
    _, path = expanded
    result = tools.run([tools.cfn_lint(), path])
    assert result.returncode == 0, tools.explain(result)


def test_cfn_lint_would_catch_a_wrong_invoke_mode(tmp_path: Path) -> None:
    """The lint above is only worth something if a bad URL setting makes it fail."""
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace("InvokeMode: RESPONSE_STREAM",
                                                   "InvokeMode: STREAMING"))
    path = tmp_path / "expanded.json"
    path.write_text(json.dumps(expand(broken)))
    result = tools.run([tools.cfn_lint(), path])
    assert result.returncode != 0
    assert "STREAMING" in result.stdout


def test_function_urls_buffered_and_streaming(expanded: tuple[dict[str, Any], Path]) -> None:
    template, _ = expanded
    urls = resources_of(template, "AWS::Lambda::Url")
    modes = {name: url["Properties"]["InvokeMode"] for name, url in urls.items()}
    assert modes == {"LanewayFunctionUrl": "BUFFERED",
                     "LanewayStreamingFunctionUrl": "RESPONSE_STREAM"}
    assert urls["LanewayStreamingFunctionUrl"]["Condition"] == "StreamingEnabled"
    for url in urls.values():
        assert url["Properties"]["AuthType"] == {"Ref": "FunctionUrlAuthType"}
    auth = template["Parameters"]["FunctionUrlAuthType"]
    assert auth["Default"] == "AWS_IAM" and sorted(auth["AllowedValues"]) == ["AWS_IAM", "NONE"]


def test_functions_run_laneway_on_python_312(expanded: tuple[dict[str, Any], Path]) -> None:
    template, _ = expanded
    functions = resources_of(template, "AWS::Lambda::Function")
    main = functions["LanewayFunction"]["Properties"]
    assert main["Handler"] == "handler.aws_lambda.handler"
    assert main["Runtime"] == "python3.12"
    assert main["Architectures"] == [{"Ref": "Architecture"}]
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    assert (tools.REPO / "handler" / "aws_lambda.py").is_file()

    streaming = functions["LanewayStreamingFunction"]["Properties"]
    assert streaming["Handler"] == "run.sh"
    variables = streaming["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert "753240598075:layer:" in json.dumps(streaming["Layers"])


def test_timeout_memory_and_concurrency_are_parameters(
    expanded: tuple[dict[str, Any], Path],
) -> None:
    template, _ = expanded
    params = template["Parameters"]
    assert params["FunctionTimeout"]["MaxValue"] == 900
    assert params["FunctionTimeout"]["Default"] >= 60, "queued requests need time to wait"
    main = template["Resources"]["LanewayFunction"]["Properties"]
    assert main["Timeout"] == {"Ref": "FunctionTimeout"}
    assert main["MemorySize"] == {"Ref": "MemorySize"}
    assert main["ReservedConcurrentExecutions"]["Fn::If"][0] == "HasReservedConcurrency"


def test_role_may_read_only_the_config_object(expanded: tuple[dict[str, Any], Path]) -> None:
    template, _ = expanded
    role = template["Resources"]["FunctionRole"]["Properties"]
    statements = [s for p in role["Policies"] if "PolicyDocument" in p
                  for s in p["PolicyDocument"]["Statement"]]
    s3 = [s for s in statements if "s3:" in json.dumps(s["Action"])]
    assert len(s3) == 1 and s3[0]["Action"] == "s3:GetObject"
    object_arn = "arn:${AWS::Partition}:s3:::${ConfigBucket}/${ConfigKey}"
    assert s3[0]["Resource"] == {"Fn::Sub": object_arn}
    assert all(s["Resource"] != "*" for s in statements)
    variables = template["Resources"]["LanewayFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["LANEWAY_CONFIG"] == {"Fn::Sub": "s3://${ConfigBucket}/${ConfigKey}"}


def test_secrets_come_from_secrets_manager_never_defaults(
    expanded: tuple[dict[str, Any], Path],
) -> None:
    template, _ = expanded
    variables = template["Resources"]["LanewayFunction"]["Properties"]["Environment"]["Variables"]
    for name in ("LANEWAY_MASTER_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_API_KEY"):
        condition, value, _ = variables[name]["Fn::If"]
        assert condition.startswith("Has"), name
        assert value["Fn::Sub"].startswith("{{resolve:secretsmanager:"), name
    for name, param in template["Parameters"].items():
        if "Secret" in name:
            assert param.get("Default", "") == "", f"{name} must not carry a default"
    assert template["Parameters"]["RedisUrl"]["NoEcho"] in (True, "true")
    assert "PublicUrlNeedsMasterKey" in template["Rules"]


def test_redis_is_an_endpoint_or_a_tls_cache_in_the_vpc(
    expanded: tuple[dict[str, Any], Path],
) -> None:
    template, _ = expanded
    cache = template["Resources"]["Cache"]
    assert cache["Type"] == "AWS::ElastiCache::ServerlessCache"
    assert cache["Condition"] == "CreateCache"
    variables = template["Resources"]["LanewayFunction"]["Properties"]["Environment"]["Variables"]
    create, tls_url, existing = variables["REDIS_URL"]["Fn::If"]
    assert create == "CreateCache" and tls_url["Fn::Sub"].startswith("rediss://")
    assert existing["Fn::If"][1] == {"Ref": "RedisUrl"}
    ingress = template["Resources"]["CacheSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [r["SourceSecurityGroupId"] for r in ingress] == [{"Ref": "FunctionSecurityGroup"}]
    outputs = template["Outputs"]
    assert {"FunctionUrl", "StreamingFunctionUrl", "CacheEndpoint"} <= set(outputs)
    # Function URLs do not stream for VPC-attached functions: the template refuses that mix.
    assert "StreamingOutsideVpc" in template["Rules"]
    assert "VpcConfig" not in template["Resources"]["LanewayStreamingFunction"]["Properties"]


def test_public_url_gets_both_grants_only_when_public(
    expanded: tuple[dict[str, Any], Path],
) -> None:
    template, _ = expanded
    grants = resources_of(template, "AWS::Lambda::Permission")
    by_action = {(g["Properties"]["Action"], g["Condition"]) for g in grants.values()}
    assert by_action == {
        ("lambda:InvokeFunctionUrl", "PublicUrl"), ("lambda:InvokeFunction", "PublicUrl"),
        ("lambda:InvokeFunctionUrl", "PublicStreamingUrl"),
        ("lambda:InvokeFunction", "PublicStreamingUrl"),
    }
    for grant in grants.values():
        props = grant["Properties"]
        if props["Action"] == "lambda:InvokeFunction":
            assert props["InvokedViaFunctionUrl"] is True, "plain Invoke must not be public"


def test_role_may_read_exactly_the_named_secrets(expanded: tuple[dict[str, Any], Path]) -> None:
    template, _ = expanded
    param = template["Parameters"]["SecretArns"]
    assert param["Type"] == "CommaDelimitedList" and param["Default"] == ""
    assert template["Conditions"]["HasSecretArns"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "SecretArns"}]}, ""]}]}
    policies = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
    named = [p["Fn::If"] for p in policies if "Fn::If" in p and p["Fn::If"][0] == "HasSecretArns"]
    assert len(named) == 1
    _, policy, otherwise = named[0]
    assert otherwise == {"Ref": "AWS::NoValue"}, "no secret grant at all without SecretArns"
    statements = policy["PolicyDocument"]["Statement"]
    assert statements == [{"Sid": "ReadTheNamedSecretsOnly", "Effect": "Allow",
                           "Action": "secretsmanager:GetSecretValue",
                           "Resource": {"Ref": "SecretArns"}}]
    everything = json.dumps(policies)
    assert everything.count("secretsmanager:") == 1, "secrets are read through this grant only"
