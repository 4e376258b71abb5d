"""What every inference route reads from a request and adds to its answer beside the body:
the caller, the priority header, the client headers forwarded upstream, the upstream's
rate-limit headers. (The streams' framing is handler/streaming.py's.)"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from router.config import Config

__all__ = ["PRIORITY_HEADER", "HeaderForwarding", "priority_of", "provider_headers"]

PRIORITY_HEADER = "x-laneway-priority"
"""For clients that cannot add a body field: the same values and clamping as `priority`."""

_NEVER = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "host",
    "content-length", "content-type", "content-encoding", "accept-encoding", "connection",
    "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "expect",
    "proxy-connection", PRIORITY_HEADER,
})
_NEVER_PREFIXES = ("x-laneway-", "x-amz-", "x-stainless-", "proxy-")


def priority_of(request: Request) -> str | None:
    """The priority header's value, checked by the engine like the body field it overrides."""
    return request.headers.get(PRIORITY_HEADER)


def provider_headers(served_headers: Mapping[str, str] | None) -> dict[str, str]:
    """The upstream's rate-limit headers, prefixed `llm_provider-` (LiteLLM's convention)."""
    if not served_headers:
        return {}
    return {f"llm_provider-{k.lower()}": v for k, v in served_headers.items()
            if v.isascii() and v.isprintable()}


class HeaderForwarding:
    """`general_settings.forward_client_headers_to_llm_api`: `true` forwards what LiteLLM
    does (`x-*` headers and `anthropic-beta`); a list names the headers (a trailing `*` is a
    prefix). Credentials, hop-by-hop headers and laneway's own are never forwarded."""

    def __init__(self, setting: bool | list[str] | None) -> None:
        self.names: frozenset[str] = frozenset()
        self.prefixes: tuple[str, ...] = ()
        if setting is True:
            self.names, self.prefixes = frozenset({"anthropic-beta"}), ("x-",)
        elif isinstance(setting, list):
            names = [n.strip().lower() for n in setting if n.strip()]
            self.names = frozenset(n for n in names if not n.endswith("*"))
            self.prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
        self.enabled = bool(self.names or self.prefixes)

    @classmethod
    def from_config(cls, config: Config) -> HeaderForwarding:
        return cls(config.general_settings.forward_client_headers_to_llm_api)

    def allows(self, name: str) -> bool:
        if name in _NEVER or name.startswith(_NEVER_PREFIXES):
            return False
        return name in self.names or name.startswith(self.prefixes)

    def pick(self, request: Request) -> dict[str, str] | None:
        if not self.enabled:
            return None
        out = {k: v for k, v in request.headers.items() if self.allows(k)}
        return out or None

