"""Where a Bedrock deployment's requests go and how they are signed.

Endpoint: `aws_bedrock_runtime_endpoint`, else `api_base`, else AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
else AWS_ENDPOINT_URL, else `https://bedrock-runtime.<region>.amazonaws.com`. Region:
`aws_region_name`, else AWS_REGION / AWS_DEFAULT_REGION / the profile's, else us-east-1.
Auth, most specific first: SigV4 (router/aws/sigv4.py; credentials via botocore, imported
here only) with the deployment's
`aws_access_key_id` / `aws_secret_access_key` / `aws_session_token`; a Bedrock API key
(`api_key`) sent as a bearer token; SigV4 with the deployment's `aws_profile_name`; then from
the environment AWS_BEARER_TOKEN_BEDROCK (bearer), AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, else the standard AWS chain (AWS_PROFILE or the default profile, container
or instance role). Every variable is read from the deployment's environment (`Deployment.env`:
the config's `environment_variables` under the process environment), not from os.environ.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from router.errors import AuthenticationFailed
from router.groups import remember_secret

if TYPE_CHECKING:
    from router.groups import Deployment

__all__ = ["BedrockAuth"]


class BedrockAuth:
    """Endpoint, region and credentials of one deployment, resolved once."""

    def __init__(self, dep: Deployment) -> None:
        params, env = dep.params, dep.env
        self._env = env
        self.region = str(params.get("aws_region_name") or env.get("AWS_REGION")
                          or env.get("AWS_DEFAULT_REGION") or "")
        self._params = params
        # Which credential, most specific first: the deployment's AWS keys, its Bedrock API
        # key, its AWS profile; then the environment's API key, its AWS keys, the AWS chain.
        self._keys = _static_keys(params, _PARAM_KEYS)
        self._bearer = None if self._keys else dep.api_key
        if not self._keys and not self._bearer and not params.get("aws_profile_name"):
            self._bearer = env.get("AWS_BEARER_TOKEN_BEDROCK")
            self._keys = None if self._bearer else _static_keys(env, _ENV_KEYS)
        self._credentials: Any = None
        if not self.region and self._bearer is None:
            self.region = self._session().get_config_variable("region") or ""
        self.region = self.region or "us-east-1"
        endpoint = (params.get("aws_bedrock_runtime_endpoint") or dep.api_base
                    or env.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
                    or env.get("AWS_ENDPOINT_URL")
                    or f"https://bedrock-runtime.{self.region}.amazonaws.com")
        self.endpoint = str(endpoint).rstrip("/")

    def _session(self) -> Any:
        import botocore.session

        profile = self._params.get("aws_profile_name") or self._env.get("AWS_PROFILE")
        return botocore.session.Session(profile=str(profile) if profile else None)

    def _resolve(self) -> Any:
        if self._keys:
            from botocore.credentials import Credentials

            return Credentials(*self._keys)
        credentials = self._session().get_credentials()
        if credentials is None:
            raise AuthenticationFailed(
                "no AWS credentials for Bedrock: set aws_access_key_id/aws_secret_access_key "
                "in litellm_params, or provide them through the usual AWS environment")
        return credentials

    async def headers(self, url: str, body: bytes, accept: str) -> dict[str, str]:
        """Headers for one POST of `body` to `url`, signed when SigV4 is used."""
        headers = {"content-type": "application/json", "accept": accept}
        if self._bearer:
            headers["authorization"] = f"Bearer {self._bearer}"
            return headers
        if self._credentials is None:
            # The AWS chain may call a metadata endpoint: keep that off the event loop.
            self._credentials = await asyncio.to_thread(self._resolve)
        credentials = self._credentials
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            frozen = await asyncio.to_thread(credentials.get_frozen_credentials)
        else:
            frozen = credentials.get_frozen_credentials()
        if not self._keys:  # from a profile or a role: unknown to the deployment's secrets
            remember_secret(frozen.secret_key)
            remember_secret(frozen.token)
        from router.aws.sigv4 import Credentials, sign

        return sign("POST", url, service="bedrock", region=self.region, headers=headers,
                    body=body, credentials=Credentials(frozen.access_key, frozen.secret_key,
                                                       frozen.token or None))


def _static_keys(source: Any, names: tuple[str, str, str]
                 ) -> tuple[str, str, str | None] | None:
    """(access key id, secret, session token) when `source` names an access key id."""
    key_id, secret, token = (source.get(n) for n in names)
    if not key_id:
        return None
    return str(key_id), str(secret or ""), str(token) if token else None


_PARAM_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
