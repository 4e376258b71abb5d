"""The master key: every route but the liveness and readiness probes requires it when set."""

from __future__ import annotations

import hmac

from starlette.requests import Request

from router.errors import AuthenticationFailed

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(self, master_key: str | None) -> None:
        self._key = master_key.encode() if master_key else None

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def check(self, request: Request) -> None:
        if self._key is None:
            return
        given = _presented_key(request)
        if given is None:
            raise AuthenticationFailed(
                "No API key provided. Send `Authorization: Bearer <key>`."
            )
        if not hmac.compare_digest(given.encode(), self._key):
            raise AuthenticationFailed("Invalid API key.")


def _presented_key(request: Request) -> str | None:
    headers = request.headers
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth.strip()
    # Azure- and Anthropic-style SDKs send the key in these headers.
    return headers.get("api-key") or headers.get("x-api-key")
