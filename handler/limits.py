"""The limits at the edge of the HTTP face, read once from `general_settings`.

Each has a default that holds for an unconfigured gateway; docs/operations.md says why each
default is what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.config import Config

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_MAX_N", "DEFAULT_READ_TIMEOUT", "HttpLimits"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
"""10 MiB: a chat with a few base64 images or a long document fits (a 128k-token prompt is
about half a MiB of text), and it matches API Gateway's payload limit (a Lambda Function URL
stops at 6 MB before laneway sees anything)."""
DEFAULT_MAX_N = 128
"""OpenAI's own upper bound for `n`."""
DEFAULT_READ_TIMEOUT = 15.0
"""Seconds a client may take to send its request headers, or stay silent inside its body."""


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_n: int = DEFAULT_MAX_N
    read_timeout: float = DEFAULT_READ_TIMEOUT

    @classmethod
    def from_config(cls, config: Config) -> HttpLimits:
        g = config.general_settings
        return cls(
            max_body_bytes=g.max_request_body_bytes or DEFAULT_MAX_BODY_BYTES,
            max_n=g.max_n or DEFAULT_MAX_N,
            read_timeout=g.request_read_timeout or DEFAULT_READ_TIMEOUT,
        )
