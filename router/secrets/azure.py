"""Azure Key Vault over its REST API: `GET {vault}/secrets/{name}?api-version=7.4`.

Vault: `key_management_settings.api_base`, else LiteLLM's AZURE_KEY_VAULT_URI. Token for
https://vault.azure.net, from the first source configured, in azure-identity's order:
1. client credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET (AZURE_AUTHORITY_HOST
   moves the authority, https://login.microsoftonline.com by default);
2. the managed identity endpoint of App Service, Functions and Container Apps:
   IDENTITY_ENDPOINT with IDENTITY_HEADER (AZURE_CLIENT_ID picks a user-assigned identity);
3. the instance metadata service (IMDS) of a VM or AKS node (AZURE_POD_IDENTITY_AUTHORITY_HOST
   moves it, as for azure-identity).
A token is cached until five minutes before it expires.

Key Vault names hold only letters, digits and dashes, so `_` in a name is read as `-`:
`os.environ/AZURE_API_KEY` reads the secret AZURE-API-KEY (a name written with dashes, as in
LiteLLM's examples, is used as it is).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from router.httpclient import UpstreamClient
from router.httpclient.oneshot import Reply, Unreachable, request
from router.secrets.base import SecretNotFound, SecretUnavailable, env_first, json_body

__all__ = ["AzureKeyVault"]

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_RESOURCE = "https://vault.azure.net"
_IMDS = "http://169.254.169.254"


class AzureKeyVault:
    label = "Azure Key Vault"

    def __init__(self, environ: Mapping[str, str], api_base: str | None, timeout: float) -> None:
        self.environ = environ
        self.vault = (api_base or env_first(environ, "AZURE_KEY_VAULT_URI")).rstrip("/")
        self.timeout = timeout
        self._token: tuple[str, float] | None = None

    def secret_name(self, name: str) -> str:
        mapped = name.replace("_", "-")
        if not _NAME.match(mapped):
            raise ValueError("Azure Key Vault names may use only letters, digits and - "
                             "(_ is read as -), up to 127 characters")
        return mapped

    async def prepare(self, client: UpstreamClient) -> None:
        if not self.vault:
            raise SecretUnavailable("no vault: set AZURE_KEY_VAULT_URI (or "
                                    "key_management_settings.api_base)")
        if self._token is not None and self._token[1] > time.monotonic():
            return
        reply, source = await self._ask_token(client)
        doc: Any = json_body(reply.body, source) if reply.status == 200 else None
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise SecretUnavailable(f"{source} gave no token (HTTP {reply.status})")
        self._token = (token, time.monotonic() + _lifetime(doc) - 300.0)

    async def _ask_token(self, client: UpstreamClient) -> tuple[Reply, str]:
        env = self.environ
        tenant, client_id = env_first(env, "AZURE_TENANT_ID"), env_first(env, "AZURE_CLIENT_ID")
        secret = env_first(env, "AZURE_CLIENT_SECRET")
        try:
            if tenant and client_id and secret:
                authority = (env_first(env, "AZURE_AUTHORITY_HOST")
                             or "https://login.microsoftonline.com").rstrip("/")
                if "://" not in authority:
                    authority = f"https://{authority}"
                form = urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                  "client_secret": secret, "scope": f"{_RESOURCE}/.default"})
                url = f"{authority}/{quote(tenant, safe='')}/oauth2/v2.0/token"
                return await request(client, "POST", url, body=form.encode(), headers={
                    "Content-Type": "application/x-www-form-urlencoded"},
                    timeout=self.timeout), "the Entra ID token endpoint"
            endpoint, header = env_first(env, "IDENTITY_ENDPOINT"), env_first(env,
                                                                               "IDENTITY_HEADER")
            query = {"resource": _RESOURCE}
            if client_id:
                query["client_id"] = client_id
            if endpoint and header:
                query["api-version"] = "2019-08-01"
                return await request(client, "GET", f"{endpoint}?{urlencode(query)}",
                                     headers={"X-IDENTITY-HEADER": header},
                                     timeout=self.timeout), "the managed identity endpoint"
            host = (env_first(env, "AZURE_POD_IDENTITY_AUTHORITY_HOST") or _IMDS).rstrip("/")
            query["api-version"] = "2018-02-01"
            return await request(client, "GET",
                                 f"{host}/metadata/identity/oauth2/token?{urlencode(query)}",
                                 headers={"Metadata": "true"},
                                 timeout=min(self.timeout, 2.0)), "the instance metadata service"
        except Unreachable as exc:
            raise SecretUnavailable(
                f"no Azure token: {exc} (set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                "AZURE_CLIENT_SECRET, or run with a managed identity)") from None

    async def read(self, client: UpstreamClient, name: str) -> str:
        await self.prepare(client)
        assert self._token is not None
        url = f"{self.vault}/secrets/{quote(name, safe='')}?api-version=7.4"
        try:
            reply = await request(client, "GET", url, timeout=self.timeout,
                                  headers={"Authorization": f"Bearer {self._token[0]}"})
        except Unreachable as exc:
            raise SecretUnavailable(f"cannot reach {self.label} at {self.vault}: {exc}"
                                    ) from None
        if reply.status == 404:
            raise SecretNotFound(name)
        if reply.status in (401, 403):
            self._token = None  # perhaps expired early or revoked: the next batch asks again
            raise SecretUnavailable(f"access denied ({reply.status})")
        if reply.status != 200:
            raise SecretUnavailable(f"{self.label} answered {reply.status}")
        doc: Any = json_body(reply.body, self.label)
        value = doc.get("value") if isinstance(doc, dict) else None
        if not isinstance(value, str):
            raise SecretUnavailable("the reply carried no value")
        return value


def _lifetime(doc: dict[str, Any]) -> float:
    """Seconds the token is good for: `expires_in` (Entra ID, IMDS), else `expires_on` (epoch
    seconds, the App Service endpoint)."""
    try:
        if doc.get("expires_in") is not None:
            return float(doc["expires_in"])
        if doc.get("expires_on") is not None:
            return float(doc["expires_on"]) - time.time()
    except (TypeError, ValueError):
        pass
    return 300.0
