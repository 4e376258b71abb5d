"""template.yaml's SnapStart option: published versions behind an alias, the Function URL (and
its public grants) on that alias, SnapStart applied only when asked for."""

from __future__ import annotations

from typing import Any

from tests.deploy.test_sam_template import TEMPLATE, expand, resources_of


def test_snapstart_is_a_parameter_on_published_versions() -> None:
    template: dict[str, Any] = expand(TEMPLATE)
    assert template["Parameters"]["SnapStart"]["Default"] == "false"
    function = template["Resources"]["LanewayFunction"]["Properties"]
    assert function["Runtime"] in ("python3.12", "python3.13")  # runtimes with SnapStart
    assert function["SnapStart"] == {
        "ApplyOn": {"Fn::If": ["SnapStartEnabled", "PublishedVersions", "None"]}}
    aliases = resources_of(template, "AWS::Lambda::Alias")
    assert {a["Properties"]["Name"] for a in aliases.values()} == {"live"}
    url = template["Resources"]["LanewayFunctionUrl"]["Properties"]
    assert url["TargetFunctionArn"] == {"Ref": "LanewayFunctionAliaslive"}
    grants = resources_of(template, "AWS::Lambda::Permission")
    for name in ("LanewayFunctionUrlPublicAccess", "LanewayFunctionPublicInvoke"):
        assert grants[name]["Properties"]["FunctionName"] == {"Ref": "LanewayFunctionAliaslive"}
    # The streaming function runs under the Web Adapter: no snapshot there.
    assert "SnapStart" not in template["Resources"]["LanewayStreamingFunction"]["Properties"]
