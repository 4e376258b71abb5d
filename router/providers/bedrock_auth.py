"""Where a Bedrock deployment's requests go and how they are signed.

Endpoint: `aws_bedrock_runtime_endpoint`, else `api_base`, else AWS_ENDPOINT_URL_BEDROCK_RUNTIME,
else AWS_ENDPOINT_URL, else `https://bedrock-runtime.<region>.amazonaws.com`. Region:
`aws_region_name`, else AWS_REGION / AWS_DEFAULT_REGION / the profile's, else us-east-1.
Auth: SigV4 (router/aws/sigv4.py; credentials via botocore, imported here only) with
`aws_access_key_id` / `aws_secret_access_key` / `aws_session_token` from the config, else the
standard AWS chain (environment, `aws_profile_name` or the default profile, container or
instance role). A Bedrock API key (`api_key`, or AWS_BEARER_TOKEN_BEDROCK when no AWS keys
are configured) is sent as a bearer token instead.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from router.errors import AuthenticationFailed

if TYPE_CHECKING:
    from router.groups import Deployment

__all__ = ["BedrockAuth"]


class BedrockAuth:
    """Endpoint, region and credentials of one deployment, resolved once."""

    def __init__(self, dep: Deployment) -> None:
        params = dep.params
        self.region = str(params.get("aws_region_name") or os.environ.get("AWS_REGION")
                          or os.environ.get("AWS_DEFAULT_REGION") or "")
        self._params = params
        self._bearer = None if params.get("aws_access_key_id") else (
            dep.api_key or os.environ.get("AWS_BEARER_TOKEN_BEDROCK"))
        self._credentials: Any = None
        if not self.region and self._bearer is None:
            self.region = self._session().get_config_variable("region") or ""
        self.region = self.region or "us-east-1"
        endpoint = (params.get("aws_bedrock_runtime_endpoint") or dep.api_base
                    or os.environ.get("AWS_ENDPOINT_URL_BEDROCK_RUNTIME")
                    or os.environ.get("AWS_ENDPOINT_URL")
                    or f"https://bedrock-runtime.{self.region}.amazonaws.com")
        self.endpoint = str(endpoint).rstrip("/")

    def _session(self) -> Any:
        import botocore.session

        profile = self._params.get("aws_profile_name")
        return botocore.session.Session(profile=str(profile) if profile else None)

    def _resolve(self) -> Any:
        params = self._params
        if params.get("aws_access_key_id"):
            from botocore.credentials import Credentials

            return Credentials(str(params["aws_access_key_id"]),
                               str(params.get("aws_secret_access_key") or ""),
                               str(params["aws_session_token"])
                               if params.get("aws_session_token") else None)
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
        from router.aws.sigv4 import Credentials, sign

        return sign("POST", url, service="bedrock", region=self.region, headers=headers,
                    body=body, credentials=Credentials(frozen.access_key, frozen.secret_key,
                                                       frozen.token or None))
