"""Cloudflare Workers AI (`cloudflare/@cf/meta/llama-3-8b-instruct`).

POST `https://api.cloudflare.com/client/v4/accounts/<account>/ai/run/<model>` with the chat
`messages` (text completions: the `prompt`), answered `{"result": {"response": ...,
"usage": ...}, "success": true}`; streams are SSE `data: {"response": "..."}` ending with
`data: [DONE]`. Embeddings (`@cf/baai/bge-*`) send `{"text": [...]}` and read
`result.data`. Errors come as `{"errors": [{"message", "code"}], "success": false}`.
Key: `api_key`, else CLOUDFLARE_API_KEY (a bearer token). Account: CLOUDFLARE_ACCOUNT_ID; or
`api_base`, the URL the model is appended to (`.../accounts/<account>/ai/run`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest
from router.providers._urls import path_segment
from router.providers._wire import (
    TextChunks,
    embedded_error,
    embedding_texts,
    encode_embedding,
    iter_sse,
    open_stream,
    parse_chunk,
    post_json,
    prompt_messages,
    reject_unsupported,
    reply_shape,
    text_reply,
    usage,
    without_neutral,
)

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["CloudflareProvider"]

API = "https://api.cloudflare.com/client/v4"
_SUPPORTED = frozenset({"model", "messages", "prompt", "stream", "stream_options",
                        "max_tokens", "max_completion_tokens", "temperature", "top_p", "seed",
                        "frequency_penalty", "presence_penalty", "user"})
_EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "user"})


def _fields(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, code, param, type) of `{"errors": [{"message", "code"}]}`."""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return None, None, None, None
    first = errors[0]
    message, code = first.get("message"), first.get("code")
    return (str(message) if message is not None else None,
            str(code) if code is not None else None, None, None)


class CloudflareProvider:
    name = "cloudflare"

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        messages = body.get("messages") or []
        request = self._request(body, ctx, {"messages": messages})
        return await self._run(deployment, request, ctx, chat=True, prompt=messages)

    async def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        messages = body.get("messages") or []
        request = self._request(body, ctx, {"messages": messages})
        async for chunk in self._run_stream(deployment, request, ctx, chat=True,
                                            prompt=messages):
            yield chunk

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        prompt = prompt_messages(body.get("prompt"))[0]["content"]
        request = self._request(body, ctx, {"prompt": prompt})
        return await self._run(deployment, request, ctx, chat=False, prompt=prompt)

    async def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        prompt = prompt_messages(body.get("prompt"))[0]["content"]
        request = self._request(body, ctx, {"prompt": prompt})
        async for chunk in self._run_stream(deployment, request, ctx, chat=False,
                                            prompt=prompt):
            yield chunk

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        clean = reject_unsupported(without_neutral(body), _EMBED_SUPPORTED, "cloudflare",
                                   ctx.drop_params)
        texts = embedding_texts(clean.get("input"), "cloudflare")
        result = await self._post(deployment, {"text": texts}, ctx)
        with reply_shape(deployment):
            vectors = [[float(x) for x in v] for v in result["data"]]
            if len(vectors) != len(texts):
                raise ValueError(f"{len(vectors)} embeddings for {len(texts)} inputs")
        from router.tokens import counter_for

        tokens = counter_for(deployment.model).text(texts)
        fmt = clean.get("encoding_format")
        return {"object": "list", "model": deployment.model,
                "data": [{"object": "embedding", "index": i,
                          "embedding": encode_embedding(v, fmt)}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    # ------------------------------------------------------------ plumbing

    def _request(self, body: JSON, ctx: CallContext, content: JSON) -> JSON:
        clean = reject_unsupported(without_neutral(body), _SUPPORTED, "cloudflare",
                                   ctx.drop_params)
        out = dict(content)
        max_tokens = clean.get("max_tokens") or clean.get("max_completion_tokens")
        if max_tokens:
            out["max_tokens"] = int(max_tokens)
        for key in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty"):
            if key in clean:
                out[key] = clean[key]
        return out

    def _url(self, dep: Deployment) -> str:
        base = dep.api_base
        if not base:
            account = dep.env.get("CLOUDFLARE_ACCOUNT_ID")
            if not account:
                raise BadRequest(f"cloudflare deployment {dep.model_name!r} needs "
                                 "CLOUDFLARE_ACCOUNT_ID (or an api_base)", param="model")
            base = f"{API}/accounts/{path_segment(account)}/ai/run"
        # Model names are paths (`@cf/meta/llama-3-8b-instruct`): each segment is encoded.
        model = "/".join(path_segment(part).replace("%40", "@")
                         for part in dep.model.split("/"))
        return f"{base.rstrip('/')}/{model}"

    def _headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        key = dep.api_key or dep.env.get("CLOUDFLARE_API_KEY")
        if key:
            headers["authorization"] = f"Bearer {key}"
        headers.update({str(k).lower(): str(v) for k, v in dep.extra_headers.items()})
        return headers

    async def _post(self, dep: Deployment, request: JSON, ctx: CallContext) -> JSON:
        reply = await post_json(ctx, dep, self._url(dep), request,
                                {**self._headers(dep), "accept": "application/json"},
                                fields=_fields)
        if reply.get("success") is False or reply.get("errors"):
            import orjson

            raise embedded_error(reply, orjson.dumps(reply), {}, dep, fields=_fields)
        with reply_shape(dep):
            result: JSON = reply["result"]
            if not isinstance(result, dict):
                raise TypeError(f"result is a {type(result).__name__}")
        return result

    async def _run(self, dep: Deployment, request: JSON, ctx: CallContext, chat: bool,
                   prompt: Any) -> JSON:
        result = await self._post(dep, request, ctx)
        with reply_shape(dep):
            text = result["response"]
            if not isinstance(text, str):
                raise TypeError(f"response is a {type(text).__name__}")
            tokens = _usage(dep, result.get("usage"), prompt, text)
        return text_reply(dep.model, text, "stop", tokens, chat=chat)

    async def _run_stream(self, dep: Deployment, request: JSON, ctx: CallContext, chat: bool,
                          prompt: Any) -> AsyncIterator[JSON]:
        chunk = TextChunks(dep.model, chat=chat)

        streamed: list[str] = []
        reported: Any = None
        async with open_stream(ctx, dep, self._url(dep), {**request, "stream": True},
                               {**self._headers(dep), "accept": "text/event-stream"},
                               fields=_fields) as resp:
            if chat:
                yield chunk("", first=True)
            with reply_shape(dep):
                async for _event, data in iter_sse(resp):
                    if data == b"[DONE]":
                        break
                    event = parse_chunk(data, dep)
                    if event.get("errors"):
                        raise embedded_error(event, data, {}, dep, fields=_fields)
                    text = event.get("response")
                    if isinstance(text, str) and text:
                        streamed.append(text)
                        yield chunk(text)
                    if event.get("usage") is not None:
                        reported = event["usage"]
                tokens = _usage(dep, reported, prompt, "".join(streamed))
        yield chunk(None, "stop")
        yield chunk.usage(tokens)


def _usage(dep: Deployment, reported: Any, prompt: Any, text: str) -> JSON:
    """Workers AI's own counts when it sends them, else the model's tokenizer's."""
    if isinstance(reported, dict) and type(reported.get("prompt_tokens")) is int and type(
            reported.get("completion_tokens")) is int:
        return usage(reported["prompt_tokens"], reported["completion_tokens"])
    counter = dep.token_counter()
    asked = counter.messages(prompt) if isinstance(prompt, list) else counter.text(str(prompt))
    return usage(asked, counter.text(text))
