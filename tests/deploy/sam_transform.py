"""Expand template.yaml through the SAM translator, offline, and print the CloudFormation JSON.

Runs inside the deploy-tools venv (it needs samtranslator and cfn-lint's YAML loader, not
laneway's environment): `python sam_transform.py template.yaml > out.json`.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from cfnlint.decode import decode_str
from samtranslator.translator.transform import transform

# The translator wants an S3 location for code; the packaged location is only known at deploy
# time, so a placeholder stands in, exactly as `sam package` would put one there.
PLACEHOLDER_CODE = "s3://laneway-validation-placeholder/laneway-lambda.zip"


class NoManagedPolicies:
    """The template names no SAM policy templates, so nothing must be looked up in IAM."""

    def load(self) -> dict[str, str]:
        return {}


def expand(text: str) -> dict[str, Any]:
    template, errors = decode_str(text)
    if errors:
        raise SystemExit("\n".join(str(e) for e in errors))
    template["Globals"]["Function"]["CodeUri"] = PLACEHOLDER_CODE
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"].pop("CodeUri", None)
    # The translator asks boto for a region to fill pseudo parameters; any region will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return dict(transform(template, {}, NoManagedPolicies()))


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        expanded = expand(handle.read())
    json.dump(expanded, sys.stdout, indent=1, default=str)
