"""laneway's SigV4 signer produces exactly what botocore's signer produces for the same inputs."""

from __future__ import annotations

import datetime

import pytest

from router.aws.sigv4 import Credentials, sign

NOW = datetime.datetime(2026, 3, 4, 5, 6, 7, tzinfo=datetime.UTC)
CASES = [
    ("s3", "GET", "https://cfg.s3.eu-west-1.amazonaws.com/team/proxy%20config.yaml", {}, b""),
    ("s3", "GET", "http://127.0.0.1:9000/bucket/a/b%C3%A9/c.yaml", {"If-None-Match": '"abc"'},
     b""),
    ("s3", "GET", "https://s3.us-east-1.amazonaws.com/b/k?versionId=3&acl=", {}, b""),
    ("bedrock", "POST",
     "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-3%3A0/converse",
     {"content-type": "application/json", "accept": "application/json"}, b'{"messages": []}'),
    ("bedrock", "POST", "https://bedrock-runtime.us-west-2.amazonaws.com/model/m/./x/../invoke",
     {"content-type": "application/json", "X-Custom": "  a   b  "}, b"{}"),
]


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////session"])
@pytest.mark.parametrize(("service", "method", "url", "headers", "body"), CASES)
def test_signature_matches_botocore(monkeypatch: pytest.MonkeyPatch, token: str | None,
                                    service: str, method: str, url: str,
                                    headers: dict[str, str], body: bytes) -> None:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    region = url.split(".")[2] if "amazonaws" in url else "us-east-1"
    expected_headers = dict(headers)
    if service == "s3":  # laneway always signs the payload hash, as botocore does over http
        import hashlib

        expected_headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    request = AWSRequest(method=method, url=url, data=body, headers=expected_headers)
    signer = botocore.auth.S3SigV4Auth if service == "s3" else botocore.auth.SigV4Auth
    signer(BotoCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
           service, region).add_auth(request)

    ours = sign(method, url, service=service, region=region, headers=headers, body=body,
                credentials=Credentials("AKIDEXAMPLE",
                                        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
                now=NOW)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Date"] == request.headers["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")


def test_credentials_repr_hides_the_secret() -> None:
    assert "SECRET" not in repr(Credentials("AKIDEXAMPLE", "SECRET", "TOKEN"))
