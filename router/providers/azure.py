"""Azure OpenAI: OpenAI's wire format behind Azure's URL layout and `api-key` header.

`azure/<deployment name>` calls
`{api_base}/openai/deployments/<deployment name>/<path>?api-version=<api_version>`; an
`api_base` ending in `/openai/v1` (or `api_version: v1`) uses Azure's v1 API, which has
OpenAI's own layout. Credentials: `api_key` (sent as `api-key`) or `azure_ad_token` (sent as a
bearer token), or Entra ID client credentials (`tenant_id`, `client_id`, `client_secret`: a
token from `azure_auth`, cached until shortly before it expires), else the environment:
AZURE_API_KEY / AZURE_OPENAI_API_KEY, AZURE_AD_TOKEN.
AZURE_API_BASE / AZURE_OPENAI_ENDPOINT and AZURE_API_VERSION / OPENAI_API_VERSION fill a
missing `api_base` / `api_version`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from router.errors import (
    AuthenticationFailed,
    InternalError,
    RequestError,
    UpstreamUnavailable,
    error_for_status,
    redact,
)
from router.groups import remember_secret
from router.providers._per_deployment import PerDeployment
from router.providers._urls import path_segment
from router.providers.openai import _HEADER_CACHE_MAX, OpenAIProvider, _str_headers

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.azure_auth import ClientCredential
    from router.providers.base import JSON, CallContext

__all__ = ["DEFAULT_API_VERSION", "AzureProvider"]

DEFAULT_API_VERSION = "2024-10-21"


def _env(env: Mapping[str, str], *names: str) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


class AzureProvider(OpenAIProvider):
    name = "azure"

    def __init__(self) -> None:
        super().__init__()
        # Per deployment id: its Entra ID credential (None: it uses none) and latest token.
        self._entra = PerDeployment(_credential_of)
        self._urls: dict[str, tuple[Any, str]] = {}
        self._tokens: dict[str, str] = {}

    # ------------------------------------------------------------ Entra ID tokens

    def _credential(self, dep: Deployment) -> ClientCredential | None:
        return self._entra(dep)

    async def _authorise(self, dep: Deployment, ctx: CallContext) -> None:
        """Make sure `headers(dep)` carries a fresh token, for deployments that use one."""
        credential = self._credential(dep)
        if credential is None:
            return
        from router.providers.azure_auth import TokenFailed, client_credential_token

        try:
            token = await client_credential_token(ctx.http, credential)
        except TokenFailed as exc:
            raise _token_error(exc, dep) from None
        remember_secret(token)
        if len(self._tokens) >= _HEADER_CACHE_MAX:
            self._tokens.clear()
        self._tokens[dep.id] = token

    def headers(self, dep: Deployment) -> dict[str, str]:
        headers = super().headers(dep)
        token = self._tokens.get(dep.id) if self._credential(dep) is not None else None
        return {**headers, "authorization": f"Bearer {token}"} if token else headers

    async def _call(self, dep: Deployment, path: str, body: JSON, ctx: CallContext) -> JSON:
        await self._authorise(dep, ctx)
        return await super()._call(dep, path, body, ctx)

    async def _stream(self, dep: Deployment, path: str, body: JSON, ctx: CallContext
                      ) -> AsyncIterator[JSON]:
        await self._authorise(dep, ctx)
        async for chunk in super()._stream(dep, path, body, ctx):
            yield chunk

    async def native_call(self, deployment: Deployment, kind: str, body: JSON,
                          ctx: CallContext) -> JSON:
        await self._authorise(deployment, ctx)
        return await super().native_call(deployment, kind, body, ctx)

    async def native_stream(self, deployment: Deployment, kind: str, body: JSON,
                            ctx: CallContext) -> AsyncIterator[JSON]:
        await self._authorise(deployment, ctx)
        async for event in super().native_stream(deployment, kind, body, ctx):
            yield event

    # ------------------------------------------------------------ URLs and headers

    def url(self, dep: Deployment, path: str) -> str:
        # The model is part of the URL, and deployments made from one wildcard entry share an
        # id: the key names both, and the cache is bounded however many names arrive.
        # (A reload that moves the deployment gives it new params: its URL is built again.)
        key = f"{dep.id}\0{dep.model}\0{path}"
        hit = self._urls.get(key)
        if hit is None or hit[0] is not dep.params:
            if len(self._urls) >= _HEADER_CACHE_MAX:
                self._urls.clear()
            hit = self._urls[key] = (dep.params, self._build_url(dep, path))
        return hit[1]

    def _build_url(self, dep: Deployment, path: str) -> str:
        base = dep.api_base or _env(dep.env, "AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT")
        if not base:
            raise InternalError(f"Azure deployment {dep.model_name!r} has no api_base")
        base = base.rstrip("/")
        version = dep.api_version or _env(dep.env, "AZURE_API_VERSION", "OPENAI_API_VERSION")
        if base.endswith("/openai/v1") or version in ("v1", "latest", "preview"):
            root = base if base.endswith("/openai/v1") else f"{base}/openai/v1"
            query = f"?api-version={version}" if version in ("latest", "preview") else ""
            return f"{root}/{path}{query}"
        if "/openai/deployments/" in base:  # a full deployment URL was given as api_base
            base = base.split("/openai/deployments/", 1)[0]
        return (f"{base}/openai/deployments/{path_segment(dep.model)}/{path}"
                f"?api-version={version or DEFAULT_API_VERSION}")

    def responses_url(self, dep: Deployment) -> str:
        """Azure serves the Responses API on its v1 layout only (the model names the
        deployment)."""
        base = dep.api_base or _env(dep.env, "AZURE_API_BASE", "AZURE_OPENAI_ENDPOINT")
        if not base:
            raise InternalError(f"Azure deployment {dep.model_name!r} has no api_base")
        base = base.rstrip("/")
        if "/openai/" in base + "/":
            base = base.split("/openai", 1)[0]
        return f"{base}/openai/v1/responses"

    def build_headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        token = dep.params.get("azure_ad_token")
        key = dep.api_key
        if not key and not token and self._credential(dep) is None:
            key = _env(dep.env, "AZURE_API_KEY", "AZURE_OPENAI_API_KEY")
            token = None if key else _env(dep.env, "AZURE_AD_TOKEN")
        if key:
            headers["api-key"] = str(key)
        elif token:
            headers["authorization"] = f"Bearer {token}"
        headers.update(_str_headers(dep.extra_headers))
        return headers


def _token_error(exc: Exception, dep: Deployment) -> RequestError:
    status = getattr(exc, "status", 0)
    message = redact(f"{dep.provider}/{dep.model}: getting an Entra ID token: {exc}",
                     dep.secrets)
    if status in (400, 401, 403):  # a wrong tenant, client or secret: the config's credential
        return AuthenticationFailed(message)
    if status == 0 or status >= 500:
        return UpstreamUnavailable(message)
    return error_for_status(status, message)


def _credential_of(dep: Deployment) -> ClientCredential | None:
    """The deployment's Entra ID client credential, if it authenticates with one."""
    if dep.api_key or dep.params.get("azure_ad_token") or not dep.params.get("tenant_id"):
        return None
    from router.providers.azure_auth import ClientCredential

    return ClientCredential.of(dep.params, dep.env)
