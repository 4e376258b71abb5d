"""S3 configs read without the SDK, against moto's server with IAM enforced (so every request's
SigV4 signature is verified and policies apply): path-style and virtual-hosted addressing, IAM
user keys and session tokens, the container credentials endpoint, IMDSv2, ETag checks."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from router.config import load_config
from router.config.sources import Reader
from router.errors import ConfigError
from tests.support.procs import free_port, spawn, stop, wait_http

CONFIG = b"model_list:\n  - model_name: chat\n    litellm_params:\n      model: openai/gpt-4o\n"
BUCKET = f"lean-{uuid.uuid4().hex[:8]}"
# Requests moto serves before it starts enforcing IAM: exactly the set-up below.
_SETUP_ACTIONS = 9


@dataclass
class StrictS3:
    endpoint: str
    reader: dict[str, str]  # an IAM user allowed allowed/* only
    role: dict[str, str]  # temporary credentials (with a session token) of an assumed role

    def environ(self, creds: dict[str, str], **extra: str) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", **creds, **extra}

    def client(self, creds: dict[str, str]) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=creds.get("AWS_SESSION_TOKEN"))


def _keys(key: str, secret: str, token: str | None = None) -> dict[str, str]:
    found = {"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    if token:
        found["AWS_SESSION_TOKEN"] = token
    return found


@pytest.fixture(scope="module")
def strict_s3() -> Iterator[StrictS3]:
    import boto3

    port = free_port()
    proc = spawn(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                 env={"INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS)})
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{endpoint}/moto-api/", proc)
        setup = {"endpoint_url": endpoint, "region_name": "us-east-1",
                 "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        iam, s3 = boto3.client("iam", **setup), boto3.client("s3", **setup)
        iam.create_user(UserName="reader")  # 1
        key = iam.create_access_key(UserName="reader")["AccessKey"]  # 2
        iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": f"arn:aws:s3:::{BUCKET}/allowed/*"},
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))  # 3
        role = iam.create_role(RoleName="config-reader", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action":
                                                    "sts:AssumeRole",
                                                    "Principal": {"AWS": "*"}}]}))  # 4
        iam.put_role_policy(RoleName="config-reader", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))  # 5
        s3.create_bucket(Bucket=BUCKET)  # 6
        s3.put_object(Bucket=BUCKET, Key="allowed/config.yaml", Body=CONFIG)  # 7
        s3.put_object(Bucket=BUCKET, Key="denied/config.yaml", Body=CONFIG)  # 8
        sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id=key["AccessKeyId"],
                           aws_secret_access_key=key["SecretAccessKey"])
        temp = sts.assume_role(RoleArn=role["Role"]["Arn"],
                               RoleSessionName="laneway")["Credentials"]  # 9
        yield StrictS3(endpoint, _keys(key["AccessKeyId"], key["SecretAccessKey"]),
                       _keys(temp["AccessKeyId"], temp["SecretAccessKey"],
                             temp["SessionToken"]))
    finally:
        stop(proc)


def test_path_style_with_user_keys(strict_s3: StrictS3) -> None:
    config = load_config(f"s3://{BUCKET}/allowed/config.yaml",
                         environ=strict_s3.environ(strict_s3.reader))
    assert config.model_list[0].model_name == "chat"


def test_session_token_is_signed_and_sent(strict_s3: StrictS3) -> None:
    config = load_config(f"s3://{BUCKET}/denied/config.yaml",
                         environ=strict_s3.environ(strict_s3.role))
    assert config.model_list[0].model_name == "chat"
    without_token = {k: v for k, v in strict_s3.role.items() if k != "AWS_SESSION_TOKEN"}
    with pytest.raises(ConfigError, match="access denied reading config object"):
        load_config(f"s3://{BUCKET}/denied/config.yaml",
                    environ=strict_s3.environ(without_token))


def test_policy_denial_is_one_clear_message(strict_s3: StrictS3) -> None:
    uri = f"s3://{BUCKET}/denied/config.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(uri, environ=strict_s3.environ(strict_s3.reader))
    assert str(caught.value) == f"access denied reading config object {uri} (AccessDenied)"


def test_wrong_secret_is_access_denied(strict_s3: StrictS3) -> None:
    wrong = {**strict_s3.reader, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    with pytest.raises(ConfigError, match=r"access denied .* \(SignatureDoesNotMatch\)"):
        load_config(f"s3://{BUCKET}/allowed/config.yaml", environ=strict_s3.environ(wrong))


def test_virtual_hosted_addressing(strict_s3: StrictS3, monkeypatch: pytest.MonkeyPatch) -> None:
    # <bucket>.localhost must reach moto: a resolver shim stands in for the DNS S3 has.
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    port = strict_s3.endpoint.rsplit(":", 1)[1]
    environ = strict_s3.environ(strict_s3.reader, LANEWAY_S3_ADDRESSING_STYLE="virtual",
                                AWS_ENDPOINT_URL_S3=f"http://localhost:{port}")
    config = load_config(f"s3://{BUCKET}/allowed/config.yaml", environ=environ)
    assert config.model_list[0].model_name == "chat"


def test_etag_check_sees_a_rotated_object(strict_s3: StrictS3) -> None:
    key = f"allowed/rotating-{uuid.uuid4().hex[:6]}.yaml"
    writer = strict_s3.client(strict_s3.role)
    writer.put_object(Bucket=BUCKET, Key=key, Body=CONFIG)
    with Reader(strict_s3.environ(strict_s3.reader)) as reader:
        first = reader.read(f"s3://{BUCKET}/{key}")
        assert first.tag  # the ETag
        assert reader.refetch(first) is None  # 304: If-None-Match matched
        writer.put_object(Bucket=BUCKET, Key=key, Body=CONFIG.replace(b"chat", b"talk"))
        second = reader.refetch(first)
        assert second is not None and b"talk" in second.body and second.tag != first.tag


# --- credentials from an endpoint ---------------------------------------------------------


def _serve(handle: Callable[[BaseHTTPRequestHandler], tuple[int, bytes]]
           ) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            status, body = handle(self)
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = _answer

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _document(creds: dict[str, str]) -> bytes:
    return json.dumps({"AccessKeyId": creds["AWS_ACCESS_KEY_ID"],
                       "SecretAccessKey": creds["AWS_SECRET_ACCESS_KEY"],
                       "Token": creds.get("AWS_SESSION_TOKEN"),
                       "Expiration": "2999-01-01T00:00:00Z"}).encode()


def test_container_credentials_endpoint(strict_s3: StrictS3) -> None:
    seen: list[str | None] = []

    def handle(req: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        seen.append(req.headers.get("Authorization"))
        if req.headers.get("Authorization") != "container-token":
            return 401, b"{}"
        return 200, _document(strict_s3.role)

    server, url = _serve(handle)
    try:
        environ = strict_s3.environ({}, AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{url}/creds",
                                    AWS_CONTAINER_AUTHORIZATION_TOKEN="container-token")
        config = load_config(f"s3://{BUCKET}/denied/config.yaml", environ=environ)
        assert config.model_list[0].model_name == "chat"
        assert seen == ["container-token"]
        environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{url}/other"  # not cached under it
        environ["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong"
        with pytest.raises(ConfigError, match="container credentials endpoint answered 401"):
            load_config(f"s3://{BUCKET}/denied/config.yaml", environ=environ)
    finally:
        server.shutdown()


def test_imdsv2(strict_s3: StrictS3) -> None:
    def handle(req: BaseHTTPRequestHandler) -> tuple[int, bytes]:
        if req.command == "PUT" and req.path == "/latest/api/token":
            return 200, b"imds-session"
        if req.headers.get("X-aws-ec2-metadata-token") != "imds-session":
            return 401, b""
        if req.path == "/latest/meta-data/iam/security-credentials/":
            return 200, b"config-reader\n"
        if req.path == "/latest/meta-data/iam/security-credentials/config-reader":
            return 200, _document(strict_s3.reader)
        return 404, b""

    server, url = _serve(handle)
    try:
        environ = strict_s3.environ({}, AWS_EC2_METADATA_DISABLED="",
                                    AWS_EC2_METADATA_SERVICE_ENDPOINT=url)
        config = load_config(f"s3://{BUCKET}/allowed/config.yaml", environ=environ)
        assert config.model_list[0].model_name == "chat"
    finally:
        server.shutdown()


def test_no_credentials_anywhere_is_one_message(strict_s3: StrictS3) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config object s3://b/k\.yaml: no AWS "
                                          r"credentials found"):
        load_config("s3://b/k.yaml", environ=strict_s3.environ({}))
