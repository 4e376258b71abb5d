"""SigV4 for a deployment of an AWS service (Bedrock, SageMaker): its region and credentials.

Region: `aws_region_name`, else AWS_REGION / AWS_DEFAULT_REGION / the profile's, else us-east-1.
Credentials, most specific first: the deployment's `aws_access_key_id` /
`aws_secret_access_key` / `aws_session_token`; its `aws_profile_name`; AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; else the standard AWS chain (AWS_PROFILE or the
default profile, container or instance role), read through botocore, which is imported only
here. With `aws_role_name`, those are the source credentials of an STS AssumeRole
(`router.aws.sts`; `aws_session_name`, default "laneway"; `aws_external_id`;
`aws_sts_endpoint`, else AWS_ENDPOINT_URL_STS, else https://sts.<region>.amazonaws.com) and
requests are signed with the role's temporary credentials, shared by every deployment that
assumes the same role. Every variable is read from the deployment's environment
(`Deployment.env`), not from os.environ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from router.errors import AuthenticationFailed, UpstreamUnavailable, error_for_status, redact
from router.groups import remember_secret

if TYPE_CHECKING:
    from router.aws.sigv4 import Credentials
    from router.groups import Deployment

__all__ = ["AwsSigner", "region_of", "static_keys"]

_PARAM_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def static_keys(source: Any, names: tuple[str, str, str] = _PARAM_KEYS
                ) -> tuple[str, str, str | None] | None:
    """(access key id, secret, session token) when `source` names an access key id."""
    key_id, secret, token = (source.get(n) for n in names)
    if not key_id:
        return None
    return str(key_id), str(secret or ""), str(token) if token else None


def _session(params: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    import botocore.session

    profile = params.get("aws_profile_name") or env.get("AWS_PROFILE")
    return botocore.session.Session(profile=str(profile) if profile else None)


def region_of(params: Mapping[str, Any], env: Mapping[str, str], *, ask_profile: bool) -> str:
    region = str(params.get("aws_region_name") or env.get("AWS_REGION")
                 or env.get("AWS_DEFAULT_REGION") or "")
    if not region and ask_profile:
        region = _session(params, env).get_config_variable("region") or ""
    return region or "us-east-1"


class AwsSigner:
    """Signs one deployment's requests to `service`; credentials resolved once, refreshed as
    they near expiry (the AWS chain's through botocore, an assumed role's through STS)."""

    def __init__(self, dep: Deployment, service: str, region: str | None = None) -> None:
        params, env = dep.params, dep.env
        self._params, self._env, self.service = params, env, service
        self._keys = static_keys(params)
        if self._keys is None and not params.get("aws_profile_name"):
            self._keys = static_keys(env, _ENV_KEYS)
        self.region = region or region_of(params, env, ask_profile=True)
        self._secrets = dep.secrets
        self._where = f"{dep.provider}/{dep.model}"
        self._role = None
        role_arn = params.get("aws_role_name")
        if role_arn:
            from router.aws.sts import RoleRequest

            endpoint = (params.get("aws_sts_endpoint") or env.get("AWS_ENDPOINT_URL_STS")
                        or f"https://sts.{self.region}.amazonaws.com")
            self._role = RoleRequest(
                role_arn=str(role_arn), session_name=str(params.get("aws_session_name")
                                                         or "laneway"),
                region=self.region, endpoint=str(endpoint),
                external_id=str(params["aws_external_id"]) if params.get("aws_external_id")
                else None)
        self._chain: Any = None

    def _from_chain(self) -> Any:
        credentials = _session(self._params, self._env).get_credentials()
        if credentials is None:
            raise AuthenticationFailed(
                f"no AWS credentials for {self._where}: set aws_access_key_id/"
                "aws_secret_access_key in litellm_params, or provide them through the usual "
                "AWS environment")
        return credentials

    async def _source(self) -> Credentials:
        from router.aws.sigv4 import Credentials

        if self._keys:
            return Credentials(*self._keys)
        if self._chain is None:
            # The AWS chain may call a metadata endpoint: keep that off the event loop.
            self._chain = await asyncio.to_thread(self._from_chain)
        chain = self._chain
        refresh_needed = getattr(chain, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            frozen = await asyncio.to_thread(chain.get_frozen_credentials)
        else:
            frozen = chain.get_frozen_credentials()
        remember_secret(frozen.secret_key)  # unknown to the deployment's secrets
        remember_secret(frozen.token)
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    async def credentials(self, http: Any) -> Credentials:
        source = await self._source()
        if self._role is None:
            return source
        from router.aws.sts import AssumeRoleFailed, assume_role

        try:
            assumed = await assume_role(http, source, self._role)
        except AssumeRoleFailed as exc:
            message = redact(f"{self._where}: assuming {self._role.role_arn}: {exc}",
                             self._secrets)
            if exc.status in (0, 500, 502, 503, 504):
                raise UpstreamUnavailable(message) from None
            if exc.status in (400, 403):  # AccessDenied, a bad role: the config's credentials
                raise AuthenticationFailed(message) from None
            raise error_for_status(exc.status, message) from None
        remember_secret(assumed.secret_key)
        remember_secret(assumed.token)
        return assumed

    async def sign(self, url: str, body: bytes, headers: dict[str, str],
                   http: Any) -> dict[str, str]:
        """`headers` plus the SigV4 headers for one POST of `body` to `url`."""
        from router.aws.sigv4 import sign

        return sign("POST", url, service=self.service, region=self.region, headers=headers,
                    body=body, credentials=await self.credentials(http))
