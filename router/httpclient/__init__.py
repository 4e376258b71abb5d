"""The HTTP client laneway uses for upstream calls (see client.py for why it is its own)."""

from router.httpclient.client import UpstreamClient
from router.httpclient.connection import Response

__all__ = ["Response", "UpstreamClient"]
