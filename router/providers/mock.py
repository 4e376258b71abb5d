"""`mock_response` deployments: well-formed OpenAI answers without any network.

`litellm_params.mock_response` decides what a call returns:

- a string: the reply text (chat `message.content`, completion `text`), split into one stream
  chunk per word;
- an error spec, which makes every call fail with that error:
  - `"litellm.RateLimitError"` or `"litellm.RateLimitError: message"` — LiteLLM's exception
    names (`RateLimitError`, `ContextWindowExceededError`, `ContentPolicyViolationError`,
    `Timeout`, `APIConnectionError`, `ServiceUnavailableError`, `InternalServerError`,
    `BadRequestError`, `AuthenticationError`, `PermissionDeniedError`, `NotFoundError`,
    `APIError`), with or without the `litellm.` prefix;
  - `"Exception: message"` — a 500 from the upstream (which the client hears as a 502);
  - a mapping `{"error": {"status": 429, "message": "...", "retry_after": 2}}`;
- a mapping with `choices`: returned as the chat completion, missing fields filled in.

Optional `litellm_params`: `mock_delay` (seconds to wait before answering, for queue tests),
`mock_timeout: true` (wait the call's timeout, then fail with 408), `mock_tool_calls` (a list of
OpenAI tool calls the chat reply carries). Usage is computed with the token counter of the
deployment's model.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from router.errors import (
    AuthenticationFailed,
    BadRequest,
    ContentPolicyViolation,
    ContextWindowExceeded,
    NotFound,
    PermissionDenied,
    RateLimited,
    RequestError,
    RequestTimeout,
    UpstreamError,
    UpstreamUnavailable,
    error_for_status,
)
from router.providers._wire import completion_id, usage

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["MockProvider", "mock_error"]

_ERRORS: dict[str, tuple[type[RequestError], int | None]] = {
    "RateLimitError": (RateLimited, None),
    "ContextWindowExceededError": (ContextWindowExceeded, None),
    "ContentPolicyViolationError": (ContentPolicyViolation, None),
    "Timeout": (RequestTimeout, None),
    "APIConnectionError": (UpstreamUnavailable, None),
    "ServiceUnavailableError": (UpstreamError, 503),
    "InternalServerError": (UpstreamError, 500),
    "APIError": (UpstreamError, 500),
    "BadRequestError": (BadRequest, None),
    "AuthenticationError": (AuthenticationFailed, None),
    "PermissionDeniedError": (PermissionDenied, None),
    "NotFoundError": (NotFound, None),
    "Exception": (UpstreamError, 500),
}
_EMBED_DIMENSIONS = 8


def mock_error(spec: Any) -> RequestError | None:
    """The error a `mock_response` value asks for, or None when it is a normal reply."""
    if isinstance(spec, Mapping) and "error" in spec:
        err = spec["error"]
        if isinstance(err, str):
            return mock_error(err) or mock_error(f"Exception: {err}")
        status = int(err.get("status", 500))
        return error_for_status(
            status,
            str(err.get("message", f"mock error {status}")),
            retry_after=err.get("retry_after"),
        )
    if not isinstance(spec, str):
        return None
    head, sep, message = spec.partition(":")
    name = head.strip().removeprefix("litellm.").removeprefix("openai.")
    if name not in _ERRORS:
        return None
    cls, named_status = _ERRORS[name]
    text = message.strip() if sep else f"mock {name}"
    if cls is UpstreamError and named_status:  # as if the upstream had said so
        return error_for_status(named_status, text)
    return cls(text, status=named_status) if named_status else cls(text)


class MockProvider:
    name = "mock"

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        spec = await self._begin(deployment, ctx)
        if isinstance(spec, Mapping) and "choices" in spec:
            return {"id": completion_id(), "object": "chat.completion",
                    "created": int(time.time()), "model": deployment.model, **spec}
        text = str(spec)
        message: JSON = {"role": "assistant", "content": text}
        finish = "stop"
        tool_calls = deployment.params.get("mock_tool_calls")
        if tool_calls:
            message = {"role": "assistant", "content": None, "tool_calls": list(tool_calls)}
            finish = "tool_calls"
        n = int(body.get("n") or 1)
        choices = [
            {"index": i, "message": message, "finish_reason": finish, "logprobs": None}
            for i in range(n)
        ]
        prompt = _count_messages(deployment, body.get("messages") or [])
        return {
            "id": completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": deployment.model,
            "choices": choices,
            "usage": usage(prompt, n * _count_text(deployment, text)),
            "system_fingerprint": None,
        }

    async def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        text = str(await self._begin(deployment, ctx))
        head = {"id": completion_id(), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": deployment.model}

        def chunk(delta: JSON, finish: str | None = None) -> JSON:
            return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                         "logprobs": None}]}

        yield chunk({"role": "assistant", "content": ""})
        for piece in _pieces(text):
            yield chunk({"content": piece})
        yield chunk({}, "stop")
        prompt = _count_messages(deployment, body.get("messages") or [])
        yield {**head, "choices": [], "usage": usage(prompt, _count_text(deployment, text))}

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        text = str(await self._begin(deployment, ctx))
        n = int(body.get("n") or 1)
        return {
            "id": completion_id("cmpl"),
            "object": "text_completion",
            "created": int(time.time()),
            "model": deployment.model,
            "choices": [{"index": i, "text": text, "finish_reason": "stop", "logprobs": None}
                        for i in range(n)],
            "usage": usage(_count_prompt(deployment, body.get("prompt")),
                           n * _count_text(deployment, text)),
        }

    async def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        text = str(await self._begin(deployment, ctx))
        head = {"id": completion_id("cmpl"), "object": "text_completion",
                "created": int(time.time()), "model": deployment.model}
        for piece in _pieces(text):
            yield {**head, "choices": [{"index": 0, "text": piece, "finish_reason": None,
                                        "logprobs": None}]}
        yield {**head, "choices": [{"index": 0, "text": "", "finish_reason": "stop",
                                    "logprobs": None}]}
        yield {**head, "choices": [], "usage": usage(
            _count_prompt(deployment, body.get("prompt")), _count_text(deployment, text))}

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        await self._begin(deployment, ctx, reply_needed=False)
        raw = body.get("input")
        inputs = raw if isinstance(raw, list) else [raw]
        dims = int(body.get("dimensions") or _EMBED_DIMENSIONS)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(inputs):
            vector = _vector(str(item), dims)
            encoded: Any = (base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
                            if as_base64 else vector)
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = _count_prompt(deployment, raw)
        return {"object": "list", "data": data, "model": deployment.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    async def _begin(self, dep: Deployment, ctx: CallContext, reply_needed: bool = True) -> Any:
        """Wait as configured, raise the configured error, or return the reply spec."""
        delay = dep.params.get("mock_delay")
        if delay:
            await asyncio.sleep(float(delay))
        if dep.params.get("mock_timeout"):
            await asyncio.sleep(ctx.timeout)
            raise RequestTimeout(f"mock/{dep.model}: no answer within {ctx.timeout}s")
        spec = dep.mock_response
        error = mock_error(spec)
        if error is not None:
            raise error
        if spec is None and reply_needed:
            return "This is a mock response."
        return spec


def _pieces(text: str) -> list[str]:
    """Word-sized stream pieces that join back to exactly `text`."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []


def _vector(text: str, dims: int) -> list[float]:
    """A deterministic unit-ish vector: same text, same embedding."""
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i % 32] - 127.5) / 127.5, 6) for i in range(dims)]


def _count_text(dep: Deployment, text: str | list[str]) -> int:
    from router.tokens import counter_for

    return counter_for(dep.model, dep.model_info.get("custom_tokenizer")).text(text)


def _count_messages(dep: Deployment, messages: list[JSON]) -> int:
    from router.tokens import counter_for

    return counter_for(dep.model, dep.model_info.get("custom_tokenizer")).messages(messages)


def _count_prompt(dep: Deployment, prompt: Any) -> int:
    if prompt is None:
        return 0
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], str):
        return sum(len(p) if isinstance(p, list) else 1 for p in prompt)  # token-id input
    return _count_text(dep, prompt if isinstance(prompt, (str, list)) else str(prompt))
