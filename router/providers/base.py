"""The one small interface every provider adapter implements.

An adapter translates between the OpenAI wire format (what laneway speaks to clients) and one
provider's wire format. It receives an OpenAI request body that the router has already cleaned
(laneway's own fields such as `priority` removed, the deployment's default params merged in, and
`model` set to the upstream model id) and returns OpenAI-shaped dicts:

- `chat` / `text_completion`: one `chat.completion` / `text_completion` object.
- `chat_stream` / `text_completion_stream`: an async iterator of chunk objects. When the
  provider reports token usage, the last chunk carries `usage` (with `choices: []`), whether or
  not the client asked for it; the router strips it when the client did not ask.
- `embed`: one `list` object of embeddings.

A provider that speaks another format natively (OpenAI's Responses API, Anthropic's Messages
API; see `router.dispatch.Native`) also has `speaks(deployment, kind) -> bool`,
`native_call(deployment, kind, body, ctx) -> JSON` and `native_stream(deployment, kind, body,
ctx) -> AsyncIterator[JSON]`, which take and return that format's bodies and stream events
(dicts with their `type`) unchanged. Requests in that format reach other adapters as chat.

Adapters raise only `router.errors.RequestError` subclasses (map upstream statuses with
`error_for_status`, timeouts with `RequestTimeout`, connection failures with
`UpstreamUnavailable`) and never put a key into an error message. An endpoint the provider
does not have is a `BadRequest` naming it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.httpclient import UpstreamClient

JSON = dict[str, Any]

__all__ = ["JSON", "CallContext", "Provider"]


@dataclass(slots=True)
class CallContext:
    """What one upstream call needs besides the deployment and the body."""

    http: UpstreamClient
    """The process's pooled upstream client (`post`, `stream`, like httpx.AsyncClient's)."""
    timeout: float
    """Seconds for the whole call (non-stream) or until the first byte (stream)."""
    stream_timeout: float | None = None
    """Seconds allowed between two stream chunks; None means `timeout`."""
    drop_params: bool = False
    """Drop request params the provider does not support instead of failing with 400."""
    request_id: str = ""
    deadline: float | None = None
    """time.monotonic() by which the whole request must be done, streams included."""
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """One provider's adapter. Instances are created once per process and are stateless."""

    name: str

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON: ...

    def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]: ...

    async def text_completion(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> JSON: ...

    def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]: ...

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON: ...

