"""Azure OpenAI: OpenAI's wire format behind Azure's URL layout and `api-key` header.

`azure/<deployment name>` calls
`{api_base}/openai/deployments/<deployment name>/<path>?api-version=<api_version>`; an
`api_base` ending in `/openai/v1` (or `api_version: v1`) uses Azure's v1 API, which has
OpenAI's own layout. Credentials: `api_key` (sent as `api-key`) or `azure_ad_token` (sent as a
bearer token), else the environment: AZURE_API_KEY / AZURE_OPENAI_API_KEY, AZURE_AD_TOKEN.
AZURE_API_BASE / AZURE_OPENAI_ENDPOINT and AZURE_API_VERSION / OPENAI_API_VERSION fill a
missing `api_base` / `api_version`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from router.errors import InternalError
from router.providers._urls import path_segment
from router.providers.openai import _HEADER_CACHE_MAX, OpenAIProvider, _str_headers

if TYPE_CHECKING:
    from router.groups import Deployment

__all__ = ["DEFAULT_API_VERSION", "AzureProvider"]

DEFAULT_API_VERSION = "2024-10-21"


def _env(env: Mapping[str, str], *names: str) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


class AzureProvider(OpenAIProvider):
    name = "azure"

    def url(self, dep: Deployment, path: str) -> str:
        # The model is part of the URL, and deployments made from one wildcard entry share an
        # id: the key names both, and the cache is bounded however many names arrive.
        key = f"{dep.id}\0{dep.model}\0{path}"
        url = self._bases.get(key)
        if url is None:
            if len(self._bases) >= _HEADER_CACHE_MAX:
                self._bases.clear()
            url = self._bases[key] = self._build_url(dep, path)
        return url

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
        if not key and not token:
            key = _env(dep.env, "AZURE_API_KEY", "AZURE_OPENAI_API_KEY")
            token = None if key else _env(dep.env, "AZURE_AD_TOKEN")
        if key:
            headers["api-key"] = str(key)
        elif token:
            headers["authorization"] = f"Bearer {token}"
        headers.update(_str_headers(dep.extra_headers))
        return headers
