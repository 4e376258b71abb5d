"""Who is calling, decided in one place for every route.

With a master key set (`general_settings.master_key`, `LANEWAY_MASTER_KEY` or
`LITELLM_MASTER_KEY`) every path needs it, except the ones in `PUBLIC_PATHS`:

- the probes `/health/liveliness`, `/health/liveness` and `/health/readiness`, which a load
  balancer or an orchestrator calls without credentials;
- the API documentation `/docs`, `/docs/oauth2-redirect`, `/redoc` and `/openapi.json` (a
  browser opening Swagger UI sends no key; they describe the routes, never the config, and
  `NO_DOCS=True` turns them off).

`AuthMiddleware` wraps the whole app, so a route added later is protected without doing
anything, and an unknown path answers 401 to a caller without the key rather than telling it
which paths exist. `Authenticator.identify` is the one decision: it returns the `Caller` (kept
in `request.state.caller`) or raises `AuthenticationFailed`. Without a master key every caller
is anonymous and allowed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Literal

from handler.errors import error_response
from router.errors import AuthenticationFailed

__all__ = ["PUBLIC_PATHS", "AuthMiddleware", "Authenticator", "Caller"]

PUBLIC_PATHS = frozenset({
    "/health/liveliness", "/health/liveness", "/health/readiness",
    "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
})


@dataclass(frozen=True, slots=True)
class Caller:
    kind: Literal["master", "anonymous"]


MASTER = Caller("master")
ANONYMOUS = Caller("anonymous")


class Authenticator:
    def __init__(self, master_key: str | None) -> None:
        self._key = master_key.encode() if master_key else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def identify(self, headers: list[tuple[bytes, bytes]]) -> Caller:
        """The caller presenting these (raw ASGI) headers, or AuthenticationFailed."""
        if self._key is None:
            return ANONYMOUS
        given = _presented_key(headers)
        if given is None:
            raise AuthenticationFailed(
                "No API key provided. Send `Authorization: Bearer <key>`."
            )
        if not hmac.compare_digest(given, self._key):
            raise AuthenticationFailed("Invalid API key.")
        return MASTER


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
                caller = self.auth.identify(scope.get("headers") or [])
            except AuthenticationFailed as exc:
                await error_response(exc)(scope, receive, send)
                return
            scope.setdefault("state", {})["caller"] = caller
        await self.app(scope, receive, send)
