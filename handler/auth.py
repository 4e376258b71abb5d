"""Who is calling, decided in one place for every route.

With a master key set (`general_settings.master_key`, `LANEWAY_MASTER_KEY` or
`LITELLM_MASTER_KEY`) every path needs a key, except the ones in `PUBLIC_PATHS`:

- the probes `/health/liveliness`, `/health/liveness` and `/health/readiness`, which a load
  balancer or an orchestrator calls without credentials;
- the API documentation `/docs`, `/docs/oauth2-redirect`, `/redoc` and `/openapi.json` (a
  browser opening Swagger UI sends no key; they describe the routes, never the config, and
  `NO_DOCS=True` turns them off);
- the dashboard's page `/ui`, which holds no data (its snapshot, `/ui/snapshot`, needs the
  master key; `NO_UI=True` turns both off).

The key is the master key or a virtual key (docs/tenants.md). `AuthMiddleware` wraps the whole
app, so a route added later is protected without doing anything, and an unknown path answers
401 to a caller without a key rather than telling it which paths exist.
`Authenticator.identify` is the one decision: it returns the caller's `Principal` (kept in
`request.state.principal`) or raises `AuthenticationFailed` — for a missing or unknown key, and
for a blocked or expired one, or one whose team is blocked. Without a master key every caller
is anonymous and unrestricted (and nobody may manage keys). What a principal may do on a route
(which models, which limits; the management API for the master key only) is the route's and
the engine's business.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from handler.errors import error_response
from router.errors import AuthenticationFailed
from router.tenants.records import ANONYMOUS, MASTER, Principal

if TYPE_CHECKING:
    from router.tenants.store import TenantStore

__all__ = ["PUBLIC_PATHS", "AuthMiddleware", "Authenticator", "principal_of"]

PUBLIC_PATHS = frozenset({
    "/health/liveliness", "/health/liveness", "/health/readiness",
    "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
    "/ui",
})

_REFUSED = {
    "blocked": "This API key is blocked.",
    "expired": "This API key has expired.",
    "team blocked": "This API key's team is blocked.",
    "team missing": "This API key's team does not exist.",
}


class Authenticator:
    def __init__(self, master_key: str | None, tenants: TenantStore) -> None:
        self._key = master_key.encode() if master_key else None
        self._tenants = tenants

    @property
    def enabled(self) -> bool:
        return self._key is not None

    async def identify(self, headers: list[tuple[bytes, bytes]]) -> Principal:
        """The caller presenting these (raw ASGI) headers, or AuthenticationFailed."""
        if self._key is None:
            return ANONYMOUS
        given = _presented_key(headers)
        if given is None:
            raise AuthenticationFailed(
                "No API key provided. Send `Authorization: Bearer <key>`."
            )
        if hmac.compare_digest(given, self._key):
            return MASTER
        try:
            text = given.decode()
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid API key.") from None
        checked = await self._tenants.check(text)
        if checked.principal is None:
            raise AuthenticationFailed(_REFUSED.get(checked.problem or "", "Invalid API key."))
        return checked.principal


def principal_of(request: Any) -> Principal:
    """The caller of a request that went through `AuthMiddleware`."""
    return getattr(request.state, "principal", ANONYMOUS)


def _presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        if name in (b"authorization", b"x-api-key", b"api-key"):
            found.setdefault(name, value)
    scheme, _, value = found.get(b"authorization", b"").partition(b" ")
    if scheme.lower() == b"bearer" and value.strip():
        return value.strip()
    # Azure- and Anthropic-style SDKs send the key in these headers; so must clients of a
    # Function URL with AWS_IAM auth, whose Authorization header carries the AWS signature.
    return found.get(b"x-api-key") or found.get(b"api-key") or None


class AuthMiddleware:
    def __init__(self, app: Any, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in PUBLIC_PATHS:
            try:
                principal = await self.auth.identify(scope.get("headers") or [])
            except AuthenticationFailed as exc:  # in the shape the route's clients read
                await error_response(exc, path=scope["path"])(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
