"""`aws_role_name`: Bedrock and SageMaker calls signed with a role assumed through a fake STS
(which re-computes the source credentials' SigV4 with botocore), through a real gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
import pytest

from tests.providers.conftest import BEDROCK_SECRET
from tests.support.fake_openai import DEFAULT_REPLY, FakeUpstream, start_server

SOURCE_SECRET = "sts-source-secret-0123456789"
ROLE = "arn:aws:iam::123456789012:role/gateway"
CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def fake_sts() -> Iterator[FakeUpstream]:
    # The credentials it issues carry the secret the fake runtimes verify with.
    server = start_server("tests.support.fake_sts", env={
        "FAKE_AWS_SECRET_ACCESS_KEY": SOURCE_SECRET, "FAKE_STS_ISSUED_SECRET": BEDROCK_SECRET})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake_runtime() -> Iterator[FakeUpstream]:
    server = start_server("tests.support.fake_sagemaker",
                          env={"FAKE_AWS_SECRET_ACCESS_KEY": BEDROCK_SECRET})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(fake_sts, fake_bedrock, fake_runtime):
    from tests.support.gateway import clean_env, start_gateway

    source = {"aws_access_key_id": "AKIDSOURCEKEY00001", "aws_secret_access_key": SOURCE_SECRET,
              "aws_region_name": "us-west-2", "aws_sts_endpoint": fake_sts.base,
              "aws_session_name": "laneway-test"}

    def bedrock(name: str, role: str, **params) -> dict:
        return {"model_name": name, "litellm_params": {
            "model": f"bedrock/{CLAUDE}", "aws_bedrock_runtime_endpoint": fake_bedrock.base,
            "aws_role_name": role, **source, **params}}

    config = {"model_list": [
        bedrock("br-role", f"{ROLE}+delay=0.3"),
        {"model_name": "sm-role", "litellm_params": {
            "model": "sagemaker/tgi", "api_base": fake_runtime.base,
            "aws_role_name": f"{ROLE}+delay=0.3", **source}},
        bedrock("br-short", f"{ROLE}+short=1"),
        bedrock("br-denied", f"{ROLE}+deny=1"),
        bedrock("br-sts-down", f"{ROLE}+status=503"),
        bedrock("br-wrong-source", f"{ROLE}-other", aws_secret_access_key="not-the-secret-000"),
        {"model_name": "br-session-token", "litellm_params": {
            "model": f"bedrock/{CLAUDE}", "aws_bedrock_runtime_endpoint": fake_bedrock.base,
            "aws_access_key_id": "ASIASTATICTOKEN001", "aws_secret_access_key": BEDROCK_SECRET,
            "aws_session_token": "static-session-token-0001", "aws_region_name": "us-west-2"}},
    ], "router_settings": {"num_retries": 0}}
    gw = start_gateway(config, clean_env())
    yield gw
    gw.stop()


def test_concurrent_requests_share_one_assume_role_call(gateway, fake_sts, fake_bedrock,
                                                        fake_runtime):
    fake_sts.clear()
    fake_bedrock.clear()

    async def burst() -> list[str]:
        client = gateway.async_openai()
        replies = await asyncio.gather(*(client.chat.completions.create(
            model="br-role", messages=MESSAGES) for _ in range(8)))
        return [r.choices[0].message.content for r in replies]

    assert asyncio.run(burst()) == [DEFAULT_REPLY] * 8
    # Another deployment assuming the same role with the same source reuses the credentials.
    gateway.openai().chat.completions.create(model="sm-role", messages=MESSAGES)
    [call] = fake_sts.requests()
    assert call["form"] == {"Action": "AssumeRole", "Version": "2011-06-15",
                            "RoleArn": f"{ROLE}+delay=0.3", "RoleSessionName": "laneway-test",
                            "DurationSeconds": "3600"}
    assert call["sigv4"]["service"] == "sts" and call["sigv4"]["region"] == "us-west-2"
    assert call["sigv4"]["key_id"] == "AKIDSOURCEKEY00001"
    signed = {(r["sigv4"]["key_id"], r["headers"]["x-amz-security-token"])
              for r in fake_bedrock.requests() + fake_runtime.requests()}
    assert len(signed) == 1
    [(key_id, token)] = signed
    assert key_id.startswith("ASIAFAKE") and token.startswith("FakeSessionToken-")


def test_credentials_near_expiry_are_assumed_again(gateway, fake_sts, fake_bedrock):
    fake_sts.clear()
    fake_bedrock.clear()
    client = gateway.openai()
    for _ in range(2):
        client.chat.completions.create(model="br-short", messages=MESSAGES)
    assert len(fake_sts.requests()) == 2
    tokens = [r["headers"]["x-amz-security-token"] for r in fake_bedrock.requests()]
    assert len(set(tokens)) == 2


def test_sts_refusals_and_failures(gateway):
    client = gateway.openai()
    with pytest.raises(openai.AuthenticationError) as denied:
        client.chat.completions.create(model="br-denied", messages=MESSAGES)
    assert "AccessDenied" in denied.value.message
    with pytest.raises(openai.AuthenticationError) as wrong:
        client.chat.completions.create(model="br-wrong-source", messages=MESSAGES)
    assert "SignatureDoesNotMatch" in wrong.value.message
    assert "not-the-secret-000" not in wrong.value.message
    with pytest.raises(openai.InternalServerError) as down:
        client.chat.completions.create(model="br-sts-down", messages=MESSAGES)
    assert down.value.status_code == 503


def test_a_static_session_token_is_signed_and_sent(gateway, fake_bedrock):
    fake_bedrock.clear()
    gateway.openai().chat.completions.create(model="br-session-token", messages=MESSAGES)
    [seen] = fake_bedrock.requests()
    assert seen["sigv4"]["key_id"] == "ASIASTATICTOKEN001"
    assert seen["headers"]["x-amz-security-token"] == "static-session-token-0001"
