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
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # Azure- and Anthropic-style SDKs send the key in these headers; so must clients of a
    # Function URL with AWS_IAM auth, whose Authorization header carries the AWS signature.
    return headers.get("x-api-key") or headers.get("api-key")
