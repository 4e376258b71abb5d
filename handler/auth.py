"""The master key: every route but the liveness and readiness probes requires it when set."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from starlette.requests import Request

from router.errors import AuthenticationFailed
from router.tenants.records import ANONYMOUS, MASTER, Principal

if TYPE_CHECKING:
    from router.tenants.store import TenantStore

__all__ = ["Authenticator"]

_REFUSED = {
    "blocked": "This API key is blocked.",
    "expired": "This API key has expired.",
    "team blocked": "This API key's team is blocked.",
    "team missing": "This API key's team does not exist.",
}


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

    async def principal(self, request: Request, tenants: TenantStore) -> Principal:
        """Who is calling: the master key, a usable virtual key (with its team), or anyone at
        all when no master key is set. A missing, unknown, blocked or expired key is a 401."""
        if self._key is None:
            return ANONYMOUS
        given = _presented_key(request)
        if given is None:
            raise AuthenticationFailed(
                "No API key provided. Send `Authorization: Bearer <key>`."
            )
        if hmac.compare_digest(given.encode(), self._key):
            return MASTER
        checked = await tenants.check(given)
        if checked.key is None:
            raise AuthenticationFailed(_REFUSED.get(checked.problem or "", "Invalid API key."))
        return Principal("key", checked.key, checked.team)


def _presented_key(request: Request) -> str | None:
    headers = request.headers
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # Azure- and Anthropic-style SDKs send the key in these headers; so must clients of a
    # Function URL with AWS_IAM auth, whose Authorization header carries the AWS signature.
    return headers.get("x-api-key") or headers.get("api-key")
