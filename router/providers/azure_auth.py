"""Microsoft Entra ID access tokens by the OAuth 2.0 client-credentials grant, for Azure OpenAI
(and any other module that needs a token for an Azure resource).

POST `{authority}/{tenant}/oauth2/v2.0/token` with `client_id`, `client_secret`,
`grant_type=client_credentials` and `scope` (for Azure OpenAI
`https://cognitiveservices.azure.com/.default`). The authority is
`https://login.microsoftonline.com`, or AZURE_AUTHORITY_HOST (sovereign clouds, a test's
loopback server). Tokens are cached per (authority, tenant, client, scope) for the whole
process until five minutes before they expire, and concurrent callers share one token call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from router.refreshing import Refreshing

__all__ = ["AUTHORITY", "COGNITIVE_SCOPE", "ClientCredential", "TokenFailed",
           "client_credential_token"]

AUTHORITY = "https://login.microsoftonline.com"
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"


class TokenFailed(Exception):
    """Entra ID refused (or could not be reached); `status` is its HTTP status, 0 when none."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ClientCredential:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str = COGNITIVE_SCOPE
    authority: str = AUTHORITY

    @classmethod
    def of(cls, params: Mapping[str, Any], env: Mapping[str, str],
           scope: str = COGNITIVE_SCOPE) -> ClientCredential | None:
        """The credential `params` configure (`tenant_id`, `client_id`, `client_secret`)."""
        tenant, client, secret = (params.get(k) for k in ("tenant_id", "client_id",
                                                           "client_secret"))
        if not (tenant and client and secret):
            return None
        authority = str(env.get("AZURE_AUTHORITY_HOST") or AUTHORITY).rstrip("/")
        if "://" not in authority:
            authority = f"https://{authority}"
        return cls(str(tenant), str(client), str(secret), scope, authority)


_tokens: Refreshing[str] = Refreshing(margin=300.0)


async def client_credential_token(http: Any, credential: ClientCredential) -> str:
    """A bearer token for `credential.scope`: cached, else from one call however many ask."""

    async def fetch() -> tuple[str, float]:
        return await _request(http, credential)

    return await _tokens.get(credential, fetch)


async def _request(http: Any, credential: ClientCredential) -> tuple[str, float]:
    import httpx

    from router.httpclient.errors import BadResponse

    url = (f"{credential.authority}/{quote(credential.tenant_id, safe='')}"
           "/oauth2/v2.0/token")
    body = urlencode({"client_id": credential.client_id,
                      "client_secret": credential.client_secret,
                      "grant_type": "client_credentials", "scope": credential.scope}).encode()
    started = time.time()
    try:
        resp = await http.post(url, content=body, timeout=httpx.Timeout(10.0), headers={
            "content-type": "application/x-www-form-urlencoded", "accept": "application/json"})
    except (httpx.HTTPError, OSError, BadResponse) as exc:
        raise TokenFailed(f"cannot reach Entra ID: {type(exc).__name__}") from None
    try:
        doc = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        doc = None
    doc = doc if isinstance(doc, dict) else {}
    if resp.status_code != 200:
        # error_description names the problem (AADSTS7000215: invalid client secret ...).
        reason = str(doc.get("error_description") or doc.get("error") or "")[:300]
        raise TokenFailed(f"Entra ID answered {resp.status_code}: {reason}", resp.status_code)
    token, lifetime = doc.get("access_token"), doc.get("expires_in")
    if not isinstance(token, str) or not token:
        raise TokenFailed("Entra ID answered without an access_token", 502)
    try:
        seconds = float(lifetime if isinstance(lifetime, (int, float, str)) else "")
    except ValueError:
        seconds = 3600.0
    return token, started + seconds
