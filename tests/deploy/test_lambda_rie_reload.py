"""The Lambda package under the Runtime Interface Emulator with its config in S3 (moto) and
`config_reload_seconds`: the check runs as an invocation starts once the interval has passed, so
a rotated object is served by the next invocation after it; an invalid one is ignored."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.deploy import events, tools
from tests.deploy.conftest import LambdaPackage
from tests.deploy.lambda_runtime import emulate
from tests.support.procs import free_port

CHAT = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def config(answer: str) -> bytes:
    return (b"model_list:\n  - model_name: chat\n    litellm_params:\n"
            b"      model: openai/x\n      mock_response: " + answer.encode() + b"\n"
            b"general_settings:\n  config_reload_seconds: 0.3\n")


def test_rotated_object_is_served_after_the_interval(
    lambda_package: LambdaPackage, lambda_runtime_dir: Path
) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="reload-config")
        s3.put_object(Bucket="reload-config", Key="config.yaml", Body=config("first"))
        env = {"LANEWAY_CONFIG": "s3://reload-config/config.yaml",
               "AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "session-token"}
        with emulate(tools.rie_binary(), lambda_package.directory, lambda_runtime_dir,
                     env) as fn:
            def answer() -> str:
                result = fn.invoke(events.function_url("POST", "/v1/chat/completions",
                                                       body=CHAT))
                assert result.status == 200, result.raw
                return str(result.json()["choices"][0]["message"]["content"])

            assert answer() == "first"
            s3.put_object(Bucket="reload-config", Key="config.yaml", Body=config("second"))
            time.sleep(0.4)
            assert answer() == "second"
            s3.put_object(Bucket="reload-config", Key="config.yaml", Body=b"model_list: [")
            time.sleep(0.4)
            assert answer() == "second"  # the invalid object is ignored
            assert answer() == "second"
    finally:
        server.stop()
