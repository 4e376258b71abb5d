"""Text completions (`/v1/completions`) for chat-only providers: the prompt becomes one user
message, the chat reply (or each chunk) is reshaped as a text completion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from router.providers._shapes import (
    prompt_messages,
    text_chunk_from_chat,
    text_completion_from_chat,
)

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["CompletionsViaChat", "chat_body_for_prompt"]


def chat_body_for_prompt(body: JSON) -> JSON:
    chat = {k: v for k, v in body.items() if k != "prompt"}
    chat["messages"] = prompt_messages(body.get("prompt"))
    return chat


class CompletionsViaChat:
    """Mixed into an adapter that has `chat` and `chat_stream`."""

    chat: Any
    chat_stream: Any

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        return text_completion_from_chat(
            await self.chat(deployment, chat_body_for_prompt(body), ctx))

    async def text_completion_stream(self, deployment: Deployment, body: JSON,
                                     ctx: CallContext) -> AsyncIterator[JSON]:
        async for chunk in self.chat_stream(deployment, chat_body_for_prompt(body), ctx):
            yield text_chunk_from_chat(chunk)
