"""Where a Bedrock deployment's requests go and how they are signed.

Endpoint: `aws_bedrock_runtime_endpoint`, else `api_base`, else AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
else AWS_ENDPOINT_URL, else `https://bedrock-runtime.<region>.amazonaws.com`. Region and SigV4
credentials (keys, profile, the AWS chain, an assumed `aws_role_name`): `aws_auth`.
Auth, most specific first: SigV4 with the deployment's `aws_access_key_id` /
`aws_secret_access_key` / `aws_session_token`; a Bedrock API key (`api_key`) sent as a bearer
token; SigV4 with the deployment's `aws_profile_name` or `aws_role_name`; then from the
environment AWS_BEARER_TOKEN_BEDROCK (bearer), else SigV4 as `aws_auth` resolves it. Every
variable is read from the deployment's environment (`Deployment.env`: the config's
`environment_variables` under the process environment), not from os.environ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from router.providers.aws_auth import AwsSigner, region_of, static_keys

if TYPE_CHECKING:
    from router.groups import Deployment

__all__ = ["BedrockAuth"]


class BedrockAuth:
    """Endpoint, region and credentials of one deployment, resolved once."""

    def __init__(self, dep: Deployment) -> None:
        params, env = dep.params, dep.env
        # A bearer key only where no AWS credential of the deployment's own is more specific.
        signs = bool(static_keys(params) or params.get("aws_profile_name")
                     or params.get("aws_role_name"))
        self._bearer = None if signs else dep.api_key
        if not signs and not self._bearer:
            self._bearer = env.get("AWS_BEARER_TOKEN_BEDROCK")
        self._signer = None if self._bearer else AwsSigner(dep, "bedrock")
        self.region = (self._signer.region if self._signer is not None
                       else region_of(params, env, ask_profile=False))
        endpoint = (params.get("aws_bedrock_runtime_endpoint") or dep.api_base
                    or env.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
                    or env.get("AWS_ENDPOINT_URL")
                    or f"https://bedrock-runtime.{self.region}.amazonaws.com")
        self.endpoint = str(endpoint).rstrip("/")

    async def headers(self, url: str, body: bytes, accept: str, http: Any) -> dict[str, str]:
        """Headers for one POST of `body` to `url`, signed when SigV4 is used."""
        headers = {"content-type": "application/json", "accept": accept}
        if self._signer is None:
            headers["authorization"] = f"Bearer {self._bearer}"
            return headers
        return await self._signer.sign(url, body, headers, http)
