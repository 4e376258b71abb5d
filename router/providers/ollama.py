"""Ollama's native API: `/api/chat`, `/api/generate` (NDJSON streams) and `/api/embed`.

`ollama_chat/<model>` always uses `/api/chat`. `ollama/<model>` does too, unless the deployment
configures a custom prompt template (`roles`, `initial_prompt_value`, ... — see
`router.prompts`): then the prompt is built exactly as configured and sent raw to
`/api/generate`. Text completions go to `/api/generate`. The server is `api_base`, else
OLLAMA_API_BASE, else http://localhost:11434; an `api_key` is sent as a bearer token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import orjson

from router.errors import BadRequest, UpstreamError, redact
from router.prompts import message_text, render, template_for
from router.providers._wire import (
    completion_id,
    encode_embedding,
    iter_ndjson,
    open_stream,
    post_json,
    reject_unsupported,
    reply_shape,
    text_chunk_from_chat,
    text_completion_from_chat,
    usage,
    without_neutral,
)

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["OllamaProvider"]

_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop": "stop",
            "max_tokens": "num_predict", "max_completion_tokens": "num_predict",
            "frequency_penalty": "frequency_penalty", "presence_penalty": "presence_penalty",
            "top_k": "top_k"}
_SUPPORTED = frozenset({"model", "messages", "prompt", "stream", "stream_options",
                        "response_format", "tools", "user", "tool_choice", *_OPTIONS})
_EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions", "user"})


class OllamaProvider:
    name = "ollama"

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        path, request = self._chat_request(deployment, body, ctx)
        reply = await post_json(ctx, deployment, self._url(deployment, path), request,
                                self._headers(deployment))
        with reply_shape(deployment):
            return _completion(reply, _Ids())

    async def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        path, request = self._chat_request(deployment, body, ctx)
        request["stream"] = True
        ids = _Ids()
        yield ids.chunk({"role": "assistant", "content": ""})
        async for chunk in self._chunks(deployment, path, request, ctx, ids):
            yield chunk

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        request = self._generate_request(deployment, body, ctx)
        reply = await post_json(ctx, deployment, self._url(deployment, "api/generate"), request,
                                self._headers(deployment))
        with reply_shape(deployment):
            return text_completion_from_chat(_completion(reply, _Ids()))

    async def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        request = {**self._generate_request(deployment, body, ctx), "stream": True}
        ids = _Ids()
        async for chunk in self._chunks(deployment, "api/generate", request, ctx, ids):
            yield text_chunk_from_chat(chunk)

    async def _chunks(self, deployment: Deployment, path: str, request: JSON,
                      ctx: CallContext, ids: _Ids) -> AsyncIterator[JSON]:
        """OpenAI chat chunks of one streamed Ollama call (NDJSON lines, errors mapped)."""
        async with open_stream(ctx, deployment, self._url(deployment, path), request,
                               self._headers(deployment), json_ok=True) as resp:
            with reply_shape(deployment):
                async for line in iter_ndjson(resp):
                    if "error" in line:
                        raise UpstreamError(redact(f"ollama/{deployment.model}: {line['error']}",
                                                   deployment.secrets))
                    for chunk in _stream_chunks(line, ids):
                        yield chunk

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        body = reject_unsupported(without_neutral(body), _EMBED_SUPPORTED, "ollama",
                                  ctx.drop_params)
        request: JSON = {"model": body.get("model", deployment.model), "input": body["input"]}
        if "dimensions" in body:
            request["dimensions"] = body["dimensions"]
        reply = await post_json(ctx, deployment, self._url(deployment, "api/embed"), request,
                                self._headers(deployment))
        fmt = body.get("encoding_format")
        with reply_shape(deployment):
            tokens = int(reply.get("prompt_eval_count") or 0)
            return {"object": "list", "model": deployment.model,
                    "data": [{"object": "embedding", "index": i,
                              "embedding": encode_embedding(vector, fmt)}
                             for i, vector in enumerate(reply.get("embeddings") or [])],
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    # ------------------------------------------------------------ requests

    def _chat_request(self, dep: Deployment, body: JSON, ctx: CallContext) -> tuple[str, JSON]:
        body = self._checked(body, ctx)
        template = template_for(dep.params) if dep.provider == "ollama" else None
        if template is not None:
            request = self._common(dep, body)
            request.update(prompt=render(body.get("messages") or [], template), raw=True)
            return "api/generate", request
        request = self._common(dep, body)
        request["messages"] = [_message(m) for m in body.get("messages") or []]
        if body.get("tools") and body.get("tool_choice") != "none":
            request["tools"] = body["tools"]
        return "api/chat", request

    def _generate_request(self, dep: Deployment, body: JSON, ctx: CallContext) -> JSON:
        body = self._checked(body, ctx)
        prompt = body.get("prompt")
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise BadRequest("ollama takes one prompt per request", param="prompt")
            prompt = prompt[0]
        return {**self._common(dep, body), "prompt": str(prompt or "")}

    @staticmethod
    def _checked(body: JSON, ctx: CallContext) -> JSON:
        body = without_neutral(body)
        # Ollama always decides on its own whether to call a tool, which is what "auto" asks.
        if body.get("tool_choice") not in (None, "auto", "none") and not ctx.drop_params:
            raise BadRequest("ollama cannot force a tool choice", param="tool_choice",
                             code="unsupported_parameter")
        return reject_unsupported(body, _SUPPORTED, "ollama", ctx.drop_params)

    @staticmethod
    def _common(dep: Deployment, body: JSON) -> JSON:
        request: JSON = {"model": body.get("model", dep.model), "stream": False}
        options = {_OPTIONS[k]: v for k, v in body.items() if k in _OPTIONS}
        if isinstance(options.get("stop"), str):
            options["stop"] = [options["stop"]]
        if options:
            request["options"] = options
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_object":
            request["format"] = "json"
        elif fmt.get("type") == "json_schema":
            request["format"] = (fmt.get("json_schema") or {}).get("schema", {})
        return request

    def _url(self, dep: Deployment, path: str) -> str:
        base = dep.api_base or dep.env.get("OLLAMA_API_BASE") or "http://localhost:11434"
        return f"{base.rstrip('/')}/{path}"

    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if dep.api_key:
            headers["authorization"] = f"Bearer {dep.api_key}"
        headers.update({str(k).lower(): str(v) for k, v in dep.extra_headers.items()})
        return headers


def _message(message: JSON) -> JSON:
    """An OpenAI chat message in Ollama's shape (text content, base64 images, dict args)."""
    out: JSON = {"role": message.get("role", "user"),
                 "content": message_text(message.get("content"))}
    content = message.get("content")
    if isinstance(content, list):
        images = [str((p.get("image_url") or {}).get("url", "")).partition(",")[2]
                  for p in content if p.get("type") == "image_url"]
        if images:
            out["images"] = images
    if message.get("tool_calls"):
        out["tool_calls"] = [{"function": {
            "name": c["function"]["name"],
            "arguments": orjson.loads(c["function"].get("arguments") or "{}")}}
            for c in message["tool_calls"]]
    return out


class _Ids:
    """One completion id for every chunk of a stream."""

    def __init__(self) -> None:
        self.head = {"id": completion_id(), "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": None}
        self.tool_calls = 0

    def chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}


def _tool_calls(message: JSON) -> list[JSON]:
    return [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
             "function": {"name": c["function"]["name"],
                          "arguments": orjson.dumps(c["function"].get("arguments", {})).decode()}}
            for c in message.get("tool_calls") or ()]


def _finish(reply: JSON, has_calls: bool) -> str:
    if reply.get("done_reason") == "length":
        return "length"
    return "tool_calls" if has_calls else "stop"


def _usage(reply: JSON) -> JSON:
    return usage(int(reply.get("prompt_eval_count") or 0), int(reply.get("eval_count") or 0))


def _completion(reply: JSON, ids: _Ids) -> JSON:
    message = reply.get("message") or {"content": reply.get("response", "")}
    calls = _tool_calls(message)
    out: JSON = {"role": "assistant", "content": message.get("content") or (None if calls
                                                                             else "")}
    if calls:
        out["tool_calls"] = calls
    return {"id": ids.head["id"], "object": "chat.completion", "created": ids.head["created"],
            "model": reply.get("model"),
            "choices": [{"index": 0, "message": out, "logprobs": None,
                         "finish_reason": _finish(reply, bool(calls))}],
            "usage": _usage(reply)}


def _stream_chunks(line: JSON, ids: _Ids) -> list[JSON]:
    ids.head["model"] = line.get("model", ids.head["model"])
    message = line.get("message") or {"content": line.get("response", "")}
    out = []
    if message.get("content"):
        out.append(ids.chunk({"content": message["content"]}))
    calls = _tool_calls(message)
    if calls:
        deltas = [{"index": ids.tool_calls + i, **c} for i, c in enumerate(calls)]
        ids.tool_calls += len(calls)
        out.append(ids.chunk({"tool_calls": deltas}))
    if line.get("done"):
        out.append(ids.chunk({}, _finish(line, ids.tool_calls > 0)))
        out.append({**ids.head, "choices": [], "usage": _usage(line)})
    return out
