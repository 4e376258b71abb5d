"""The client raises httpx's exception classes, so adapters map one family of errors; httpx is
imported on the first error, not at cold start."""

from __future__ import annotations

from types import ModuleType

__all__ = ["http_errors"]


def http_errors() -> ModuleType:
    import httpx

    return httpx
