"""The client raises httpx's exception classes, so adapters map one family of errors; httpx is
imported on the first error, not at cold start. Two failures have no httpx class because they
are the upstream's fault rather than the network's: a reply that is not HTTP, and one too big."""

from __future__ import annotations

from types import ModuleType

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "BadResponse", "InvalidResponse", "ResponseTooLarge",
           "http_errors"]

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024


def http_errors() -> ModuleType:
    import httpx

    return httpx


class BadResponse(Exception):
    """The upstream answered, but with something no caller can use (a 502, not a 503)."""


class InvalidResponse(BadResponse):
    """The bytes are not a valid HTTP/1.1 response (bad status line, framing, ...)."""


class ResponseTooLarge(BadResponse):
    """The body (or one stream event) is over the configured limit; the rest is not read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upstream's response is larger than {limit} bytes")
        self.limit = limit
