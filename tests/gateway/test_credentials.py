"""No credential leaves the gateway: not in /model/info, not in an error body that an upstream
made by echoing what laneway sent it, not in the gateway's log (at DEBUG level)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.receivers import Received, Receiver

MASTER = "credentials-master-key-0123456789"
BEDROCK_SECRET = "bedrock-secret-never-sent-0123456789"

# Values shaped like nothing in particular, so only knowing them can redact them.
CONFIG_SECRETS = {
    "api_key": "cfgkey-0a1b2c3d4e5f",
    "vertex_credentials": '{"private_key": "vtx-private-0123456789"}',
    "azure_client_secret": "azclient-0123456789",
    "aws_access_key_id": "AKIDINFOTEST00000001",
    "aws_secret_access_key": "awssecret-0123456789",
    "aws_session_token": "awssession-0123456789",
    "azure_ad_token": "adtoken-0123456789",
    "client_password": "clientpw-0123456789",
    "my_service_token": "svctoken-0123456789",
}
URL_SECRETS = ("urluser-0123", "urlpass-0123456789", "urlsig-0123456789")
HEADER_SECRET = "hdrvalue-0123456789"
TOKENIZER_SECRET = "hftok-0123456789"
ENV_SECRETS = {  # given under environment_variables: or the process environment
    "OPENAI_API_KEY": "envopenai-0123456789",
    "ANTHROPIC_API_KEY": "envanthropic-0123456789",
    "AZURE_AD_TOKEN": "envadtoken-0123456789",
    "AWS_BEARER_TOKEN_BEDROCK": "envbedrockbearer-0123456789",
}
PROCESS_SECRETS = {"GROQ_API_KEY": "envgroq-process-0123456789"}
PROFILE_SECRETS = ("profilesecret-0123456789", "profilesession-0123456789")
SIGNING_SECRETS = {"AKIDECHOTEST00000001": BEDROCK_SECRET,
                   "AKIDPROFILETEST00001": PROFILE_SECRETS[0]}


def _echo(got: Received) -> tuple[int, bytes, str]:
    """A careless upstream: its error repeats every header it was sent (and, to signed Bedrock
    requests, as if it had looked it up, the secret key that signed them)."""
    seen = " ".join(v for k, v in got.headers.items() if k not in ("host", "content-length"))
    auth = got.headers.get("authorization", "")
    looked_up = next((secret for key_id, secret in SIGNING_SECRETS.items()
                      if f"Credential={key_id}/" in auth), "")
    message = f"unauthorized; you sent {seen} {looked_up}"
    body = {"error": {"message": message, "type": "authentication_error"}, "message": message}
    return 401, orjson.dumps(body), "application/json"


@pytest.fixture(scope="module")
def echo() -> Iterator[Receiver]:
    with Receiver(_echo).start() as receiver:
        yield receiver


def _entry(name: str, **params: object) -> dict:
    return {"model_name": name, "litellm_params": params}


@pytest.fixture(scope="module")
def gw(echo: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    # AWS credentials that only botocore's chain knows (a profile): laneway learns them when
    # it signs, and must redact them all the same.
    credentials = tmp_path_factory.mktemp("aws") / "credentials"
    credentials.write_text(
        "[echo]\naws_access_key_id = AKIDPROFILETEST00001\n"
        f"aws_secret_access_key = {PROFILE_SECRETS[0]}\n"
        f"aws_session_token = {PROFILE_SECRETS[1]}\n")
    config = {
        "environment_variables": {**ENV_SECRETS, "OPENAI_API_BASE": echo.url,
                                  "GROQ_API_BASE": echo.url},
        "model_list": [
            {"model_name": "info-many", "litellm_params": {
                "model": "openai/info-model",
                "api_base": f"https://{URL_SECRETS[0]}:{URL_SECRETS[1]}@127.0.0.1:9/v1"
                            f"?sig={URL_SECRETS[2]}",
                "extra_headers": {"x-tenant": HEADER_SECRET}, **CONFIG_SECRETS},
             "model_info": {"custom_tokenizer": {"identifier": "org/tok",
                                                 "auth_token": TOKENIZER_SECRET},
                            "input_cost_per_token": 0.5}},
            _entry("echo-openai-env", model="openai/echo-a"),
            _entry("echo-groq-process", model="groq/echo-b"),
            _entry("echo-headers", model="openai/echo-c", api_base=echo.url,
                   extra_headers={"x-tenant": HEADER_SECRET}),
            _entry("echo-azure-ad", model="azure/echo-d", api_base=echo.url,
                   azure_ad_token=CONFIG_SECRETS["azure_ad_token"]),
            _entry("echo-azure-env-ad", model="azure/echo-e", api_base=echo.url),
            _entry("echo-anthropic", model="anthropic/echo-f", api_base=echo.url),
            _entry("echo-bedrock", model="bedrock/echo-g", aws_bedrock_runtime_endpoint=echo.url,
                   aws_access_key_id="AKIDECHOTEST00000001", aws_secret_access_key=BEDROCK_SECRET,
                   aws_session_token=CONFIG_SECRETS["aws_session_token"],
                   aws_region_name="us-east-1"),
            _entry("echo-bedrock-bearer", model="bedrock/echo-h",
                   aws_bedrock_runtime_endpoint=echo.url),
            _entry("echo-bedrock-profile", model="bedrock/echo-i", aws_profile_name="echo",
                   aws_bedrock_runtime_endpoint=echo.url, aws_region_name="us-east-1"),
        ],
        # A 401 cools the deployment down; keep that short so each test's second call is quick.
        "router_settings": {"num_retries": 0, "cooldown_time": 0.01},
        "general_settings": {"master_key": "os.environ/CRED_MASTER_KEY"},
    }
    env = {**{k: v for k, v in clean_env().items() if k not in ENV_SECRETS},
           **PROCESS_SECRETS, "CRED_MASTER_KEY": MASTER,
           "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": "/nonexistent",
           "AWS_EC2_METADATA_DISABLED": "true"}
    gateway = start_gateway(config, env, key=MASTER, args=("--detailed_debug",))
    yield gateway
    gateway.stop()


def _all_secrets() -> list[str]:
    return [*CONFIG_SECRETS.values(), "vtx-private-0123456789", *URL_SECRETS, HEADER_SECRET,
            TOKENIZER_SECRET, *ENV_SECRETS.values(), *PROCESS_SECRETS.values(), BEDROCK_SECRET,
            *PROFILE_SECRETS]


def test_model_info_shows_no_credential(gw: Gateway) -> None:
    for path in ("/v1/model/info", "/model/info"):
        resp = gw.client().get(path)
        assert resp.status_code == 200
        text = resp.text
        leaked = [s for s in _all_secrets() if s in text]
        assert leaked == []
        [info] = [d for d in resp.json()["data"] if d["model_name"] == "info-many"]
        params = info["litellm_params"]
        # What is not a credential is still shown.
        assert params["api_base"] == "https://127.0.0.1:9/v1"
        assert params["model"] == "openai/info-model"
        assert info["model_info"]["input_cost_per_token"] == 0.5
        assert info["model_info"]["custom_tokenizer"] == {"identifier": "org/tok",
                                                          "revision": "main"}


@pytest.mark.parametrize("model", [
    "echo-openai-env", "echo-groq-process", "echo-headers", "echo-azure-ad", "echo-azure-env-ad",
    "echo-anthropic", "echo-bedrock", "echo-bedrock-bearer", "echo-bedrock-profile",
])
def test_echoed_credentials_are_redacted(gw: Gateway, echo: Receiver, model: str) -> None:
    echo.clear()
    for stream in (False, True):
        resp = gw.client().post("/v1/chat/completions", json={
            "model": model, "stream": stream, "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["message"]
        leaked = [s for s in _all_secrets() if s in resp.text]
        assert leaked == [], resp.text
        assert "[redacted]" in resp.text
    # The upstream did get a credential (else there was nothing to leak).
    assert len(echo.received) == 2
    sent = " ".join(echo.received[0].headers.values())
    assert any(s in sent for s in _all_secrets()) or "AWS4-HMAC-SHA256" in sent
    if model == "echo-bedrock-profile":  # signed with the profile, its session token sent
        assert echo.received[0].headers["x-amz-security-token"] == PROFILE_SECRETS[1]


def test_gateway_log_holds_no_credential(gw: Gateway) -> None:
    gw.client().post("/v1/chat/completions", json={
        "model": "echo-headers", "messages": [{"role": "user", "content": "hi"}]})
    output = gw.stop()  # also checks the secrets found in the config and environment
    leaked = [s for s in _all_secrets() if s in output]
    assert leaked == []
    assert "echo-headers" in output or "request" in output
