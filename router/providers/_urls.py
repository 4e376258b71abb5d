"""Putting a model name into a URL path.

A model name comes from the config or, through a wildcard, from any client: it is one path
segment, percent-encoded as UTF-8, so `../`, `?`, `#` or non-ASCII text can neither leave the
segment nor break the request line.
"""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["path_segment"]


def path_segment(value: str) -> str:
    """`value` as exactly one percent-encoded path segment."""
    encoded = quote(value, safe="", errors="strict")
    # "." and ".." are dot-segments that servers and proxies resolve away.
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded
