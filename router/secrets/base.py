"""What every secret manager offers: a name check, one optional set-up step, and one read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from router.httpclient import UpstreamClient

__all__ = ["Manager", "SecretNotFound", "SecretUnavailable", "env_first", "json_body"]


class SecretNotFound(Exception):
    """The manager answered that it has no such secret (or no current version of it)."""


class SecretUnavailable(Exception):
    """The manager could not be asked, or refused: unreachable, denied, a reply not understood.
    The message says why, and never carries a secret value or a credential."""


class Manager(Protocol):
    label: str
    """How the manager is named in messages (e.g. "AWS Secrets Manager")."""

    def secret_name(self, name: str) -> str:
        """The name to ask the manager for `name` (the NAME of `os.environ/NAME`); raises
        ValueError with a sentence when the manager cannot hold such a name."""

    async def prepare(self, client: UpstreamClient) -> None:
        """Get what every read needs (credentials, a token) once before a batch of reads;
        raises SecretUnavailable."""

    async def read(self, client: UpstreamClient, name: str) -> str:
        """The current value of the secret called `name` (already mapped by `secret_name`)."""


def env_first(environ: Mapping[str, str], *names: str) -> str:
    """The first of `names` set to something other than blanks, stripped; else ""."""
    for name in names:
        value = (environ.get(name) or "").strip()
        if value:
            return value
    return ""


def json_body(body: bytes, what: str) -> Any:
    import orjson

    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SecretUnavailable(f"{what} sent a reply that is not JSON") from None
