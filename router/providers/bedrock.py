"""Amazon Bedrock (`bedrock/<model id>`): Converse, ConverseStream and InvokeModel, SigV4-signed.

Chat uses Converse (ConverseStream for streams, whose AWS event-stream body is decoded as it
arrives). A deployment with a custom prompt template (`router.prompts`) instead sends the
rendered prompt to InvokeModel for meta / mistral / amazon.titan-text models, and streams it
with InvokeModelWithResponseStream (chunk frames carrying each family's JSON). Text
completions of those text models go there with the raw prompt; of other models, to Converse
as one user message.
Embeddings: InvokeModel for amazon.titan-embed-* (one call per input, run concurrently) and
cohere.embed-*. `bedrock/converse/<id>` and `bedrock/invoke/<id>` are accepted as LiteLLM
writes them. Endpoint and credentials: see `bedrock_auth`. botocore is imported only here.
Anthropic Messages requests for Claude models are passed through to InvokeModel (and
InvokeModelWithResponseStream, whose chunk frames carry the Messages stream events).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from router.prompts import render, template_for
from router.providers._per_deployment import PerDeployment
from router.providers._urls import path_segment
from router.providers._via_chat import chat_body_for_prompt
from router.providers._wire import (
    completion_id,
    encode_embedding,
    error_from_response,
    open_stream,
    parse_chunk,
    post_json,
    prompt_messages,
    reply_shape,
    text_chunk_from_chat,
    text_completion_from_chat,
    usage,
)
from router.providers.bedrock_auth import BedrockAuth
from router.providers.bedrock_converse import ConverseStream, from_converse, to_converse
from router.providers.bedrock_invoke import (
    embedding_bodies,
    embedding_vectors,
    family,
    text_body,
    text_piece,
    text_reply,
)
from router.providers.eventstream import EventStreamDecoder

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

_EMBED_CALLS_AT_ONCE = 8

__all__ = ["BedrockProvider"]

_EVENTSTREAM = "application/vnd.amazon.eventstream"
_BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
_TEXT_FAMILIES = ("meta", "mistral", "amazon.titan-text")
# Exceptions inside a ConverseStream body, by their :exception-type, as HTTP statuses.
_STREAM_ERRORS = {"throttlingException": 429, "validationException": 400,
                  "serviceUnavailableException": 503, "internalServerException": 500,
                  "modelStreamErrorException": 424, "modelTimeoutException": 408}


def model_id(dep: Deployment) -> str:
    for route in ("converse/", "invoke/"):
        if dep.model.startswith(route):
            return dep.model[len(route):]
    return dep.model


class BedrockProvider:
    name = "bedrock"

    def __init__(self) -> None:
        self._auth = PerDeployment(BedrockAuth)

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        template = template_for(deployment.params)
        if template is not None:
            prompt = render(body.get("messages") or [], template)
            return await self._invoke_text(deployment, prompt, body, ctx)
        reply = await self._post(deployment, "converse", to_converse(body, ctx.drop_params), ctx)
        with reply_shape(deployment):
            return from_converse(reply, model_id(deployment))

    async def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        template = template_for(deployment.params)
        if template is not None:
            prompt = render(body.get("messages") or [], template)
            async for chunk in self._invoke_text_stream(deployment, prompt, body, ctx):
                yield chunk
            return
        request = orjson.dumps(to_converse(body, ctx.drop_params))
        url, headers = await self._target(deployment, "converse-stream", request, _EVENTSTREAM,
                                          ctx)
        state = ConverseStream(model_id(deployment))
        decoder = EventStreamDecoder()
        async with open_stream(ctx, deployment, url, request, headers) as resp:
            with reply_shape(deployment):  # a broken frame (EventStreamError) included
                async for data in resp.aiter_bytes():
                    for frame in decoder.feed(data):
                        if frame.message_type != "event":
                            status = _STREAM_ERRORS.get(frame.event_type, 500)
                            raise error_from_response(status, frame.payload, {}, deployment)
                        event = parse_chunk(frame.payload, deployment)
                        for chunk in state.translate(frame.event_type, event):
                            yield chunk

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        if family(model_id(deployment)) in _TEXT_FAMILIES:
            prompt = prompt_messages(body.get("prompt"))[0]["content"]
            chat_body = {k: v for k, v in body.items() if k != "prompt"}
            return text_completion_from_chat(
                await self._invoke_text(deployment, prompt, chat_body, ctx))
        return text_completion_from_chat(
            await self.chat(deployment, chat_body_for_prompt(body), ctx))

    async def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        if family(model_id(deployment)) in _TEXT_FAMILIES:
            async for chunk in self._invoke_text_stream(
                    deployment, prompt_messages(body.get("prompt"))[0]["content"],
                    {k: v for k, v in body.items() if k != "prompt"}, ctx):
                yield text_chunk_from_chat(chunk)
            return
        async for chunk in self.chat_stream(deployment, chat_body_for_prompt(body), ctx):
            yield text_chunk_from_chat(chunk)

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        model = model_id(deployment)
        bodies, count = embedding_bodies(model, body, ctx.drop_params)
        # Titan embeds one text per call: a list fans out, a few calls at a time (the request
        # holds one slot; the upstream must not see hundreds of its calls at once).
        at_once = asyncio.Semaphore(_EMBED_CALLS_AT_ONCE)

        async def one(b: JSON) -> Any:
            async with at_once:
                return await self._post(deployment, "invoke", b, ctx)

        replies = await asyncio.gather(*(one(b) for b in bodies))
        with reply_shape(deployment):
            vectors, tokens = embedding_vectors(model, list(replies))
        if tokens is None:
            from router.tokens import counter_for

            raw = body.get("input")
            tokens = counter_for(model).text(raw if isinstance(raw, list) else [str(raw or "")])
        fmt = body.get("encoding_format")
        return {"object": "list", "model": model,
                "data": [{"object": "embedding", "index": i,
                          "embedding": encode_embedding(v, fmt)}
                         for i, v in enumerate(vectors[:count])],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    # ------------------------------------------------------------ Messages, passed through

    def speaks(self, deployment: Deployment, kind: str) -> bool:
        return (kind == "messages" and family(model_id(deployment)) == "anthropic"
                and template_for(deployment.params) is None)

    def _claude_body(self, body: JSON) -> JSON:
        # Bedrock names the model in the URL and the stream in the action, not in the body.
        out = {k: v for k, v in body.items() if k not in ("model", "stream")}
        out["anthropic_version"] = _BEDROCK_ANTHROPIC_VERSION
        return out

    async def native_call(self, deployment: Deployment, kind: str, body: JSON,
                          ctx: CallContext) -> JSON:
        reply: JSON = await self._post(deployment, "invoke", self._claude_body(body), ctx)
        return reply

    async def native_stream(self, deployment: Deployment, kind: str, body: JSON,
                            ctx: CallContext) -> AsyncIterator[JSON]:
        request = orjson.dumps(self._claude_body(body))
        url, headers = await self._target(deployment, "invoke-with-response-stream", request,
                                          _EVENTSTREAM, ctx)
        decoder = EventStreamDecoder()
        async with open_stream(ctx, deployment, url, request, headers) as resp:
            with reply_shape(deployment):
                async for data in resp.aiter_bytes():
                    for frame in decoder.feed(data):
                        if frame.message_type != "event":
                            status = _STREAM_ERRORS.get(frame.event_type, 500)
                            raise error_from_response(status, frame.payload, {}, deployment)
                        if frame.event_type != "chunk":
                            continue
                        wrapped = parse_chunk(frame.payload, deployment)
                        event = parse_chunk(base64.b64decode(wrapped["bytes"]), deployment)
                        if event.get("type") == "error":
                            raise error_from_response(500, orjson.dumps(event), {}, deployment)
                        yield event

    # ------------------------------------------------------------ plumbing

    async def _invoke_text(self, dep: Deployment, prompt: str, body: JSON,
                           ctx: CallContext) -> JSON:
        model = model_id(dep)
        reply = await self._post(dep, "invoke", text_body(model, prompt, body, ctx.drop_params),
                                 ctx)
        with reply_shape(dep):
            text, finish, prompt_tokens, completion_tokens = text_reply(model, reply)
            if not isinstance(text, str):
                raise TypeError(f"the generated text is a {type(text).__name__}")
            prompt_tokens = None if prompt_tokens is None else int(prompt_tokens)
            completion_tokens = None if completion_tokens is None else int(completion_tokens)
        if prompt_tokens is None or completion_tokens is None:
            from router.tokens import counter_for

            counter = counter_for(model, dep.model_info.get("custom_tokenizer"))
            prompt_tokens = counter.text(prompt) if prompt_tokens is None else prompt_tokens
            completion_tokens = (counter.text(text) if completion_tokens is None
                                 else completion_tokens)
        return {"id": completion_id(), "object": "chat.completion", "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish, "logprobs": None}],
                "usage": usage(int(prompt_tokens), int(completion_tokens))}

    async def _invoke_text_stream(self, dep: Deployment, prompt: str, body: JSON,
                                  ctx: CallContext) -> AsyncIterator[JSON]:
        """InvokeModelWithResponseStream of a raw-prompt text model, as chat chunks."""
        model = model_id(dep)
        request = orjson.dumps(text_body(model, prompt, body, ctx.drop_params))
        url, headers = await self._target(dep, "invoke-with-response-stream", request,
                                          _EVENTSTREAM, ctx)
        head = {"id": completion_id(), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}

        def chunk(delta: JSON, finish: str | None = None) -> JSON:
            return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                         "logprobs": None}]}

        decoder = EventStreamDecoder()
        texts: list[str] = []
        finish, prompt_tokens, completion_tokens = "stop", None, None
        async with open_stream(ctx, dep, url, request, headers) as resp:
            yield chunk({"role": "assistant", "content": ""})
            with reply_shape(dep):
                async for data in resp.aiter_bytes():
                    for frame in decoder.feed(data):
                        if frame.message_type != "event":
                            status = _STREAM_ERRORS.get(frame.event_type, 500)
                            raise error_from_response(status, frame.payload, {}, dep)
                        if frame.event_type != "chunk":
                            continue
                        wrapped = parse_chunk(frame.payload, dep)
                        event = parse_chunk(base64.b64decode(wrapped["bytes"]), dep)
                        text, done, asked, made = text_piece(model, event)
                        if text:
                            texts.append(text)
                            yield chunk({"content": text})
                        finish = done or finish
                        prompt_tokens = asked if asked is not None else prompt_tokens
                        completion_tokens = made if made is not None else completion_tokens
        if prompt_tokens is None or completion_tokens is None:
            from router.tokens import counter_for

            counter = counter_for(model, dep.model_info.get("custom_tokenizer"))
            prompt_tokens = counter.text(prompt) if prompt_tokens is None else prompt_tokens
            completion_tokens = (counter.text("".join(texts)) if completion_tokens is None
                                 else completion_tokens)
        yield chunk({}, finish)
        yield {**head, "choices": [], "usage": usage(int(prompt_tokens), int(completion_tokens))}

    async def _target(self, dep: Deployment, action: str, content: bytes,
                      accept: str, ctx: CallContext) -> tuple[str, dict[str, str]]:
        auth = self._auth(dep)
        url = f"{auth.endpoint}/model/{path_segment(model_id(dep))}/{action}"
        headers = await auth.headers(url, content, accept, ctx.http)
        # Added after signing: AWS only checks the headers listed as signed.
        headers.update({str(k).lower(): str(v) for k, v in dep.extra_headers.items()})
        return url, headers

    async def _post(self, dep: Deployment, action: str, payload: JSON,
                    ctx: CallContext) -> Any:
        content = orjson.dumps(payload)
        url, headers = await self._target(dep, action, content, "application/json", ctx)
        return await post_json(ctx, dep, url, content, headers)
