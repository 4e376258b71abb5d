"""Amazon SageMaker real-time endpoints (`sagemaker/<endpoint name>`), SigV4-signed (`aws_auth`).

Chat and text completions go to InvokeEndpoint (InvokeEndpointWithResponseStream for
streams, an AWS event-stream body of PayloadPart frames) of a TGI / LMI-style container:
`{"inputs": prompt, "parameters": {...}}` with the prompt and parameters built as the
`huggingface/` adapter builds them for TGI's `/generate` (the deployment's prompt template,
else `router.prompts.DEFAULT_TEMPLATE`), answered by `[{"generated_text": ...}]`; streamed
payloads are TGI's SSE lines or LMI's JSON lines, carrying `token.text` and a final `details`.
Embeddings send `{"text_inputs": [...]}` to an embedding container and read `{"embedding":
[...]}`. URL: `https://runtime.sagemaker.<region>.amazonaws.com/endpoints/<name>/invocations`;
`api_base` (else AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME, else AWS_ENDPOINT_URL) replaces the part
before `/endpoints`. A ModelError (424) carries the container's own status, which is what the
client gets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from router.errors import RequestError, UpstreamError
from router.httpclient.errors import DEFAULT_MAX_RESPONSE_BYTES
from router.prompts import render, template_for
from router.providers._per_deployment import PerDeployment
from router.providers._urls import path_segment
from router.providers._wire import (
    TextChunks,
    embedding_texts,
    encode_embedding,
    error_from_response,
    open_stream,
    post_json,
    prompt_messages,
    reject_unsupported,
    reply_shape,
    text_reply,
    usage,
    without_neutral,
)
from router.providers.aws_auth import AwsSigner
from router.providers.eventstream import EventStreamDecoder
from router.providers.tgi import _FINISH, _SUPPORTED, _count, _parameters

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["SageMakerProvider"]

_EVENTSTREAM = "application/vnd.amazon.eventstream"
_EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "user"})


def _aws_fields(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(message, code, param, type) of SageMaker's `{"Message", "ErrorCode"}` bodies."""
    if not isinstance(payload, dict):
        return None, None, None, None
    message = payload.get("OriginalMessage") or payload.get("Message") or payload.get("message")
    code = payload.get("ErrorCode")
    return (str(message) if message is not None else None,
            str(code) if code is not None else None, None, None)


def _fields_seen(seen: JSON) -> Any:
    """`_aws_fields` that also keeps the error body it read, for `_model_error`."""

    def fields(payload: Any) -> tuple[str | None, str | None, str | None, str | None]:
        if isinstance(payload, dict):
            seen.update(payload)
        return _aws_fields(payload)

    return fields


def _model_error(exc: RequestError, seen: JSON, dep: Deployment) -> RequestError:
    """A ModelError (424) as the error of the status the container itself answered, read from
    the container's own message (so a TGI context-length error is one here too)."""
    original = seen.get("OriginalStatusCode")
    if exc.status != 424 or type(original) is not int or not 400 <= original <= 599:
        return exc
    message = seen.get("OriginalMessage") or seen.get("Message") or ""
    return error_from_response(original, str(message).encode(), {}, dep)


class SageMakerProvider:
    name = "sagemaker"

    def __init__(self) -> None:
        self._signers = PerDeployment(lambda dep: AwsSigner(dep, "sagemaker"))

    # ------------------------------------------------------------ chat and completions

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        prompt = render(body.get("messages") or [], template_for(deployment.params))
        return await self._generate(deployment, body, prompt, ctx, chat=True)

    async def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        prompt = render(body.get("messages") or [], template_for(deployment.params))
        async for chunk in self._generate_stream(deployment, body, prompt, ctx, chat=True):
            yield chunk

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        prompt = prompt_messages(body.get("prompt"))[0]["content"]
        return await self._generate(deployment, body, prompt, ctx, chat=False)

    async def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        prompt = prompt_messages(body.get("prompt"))[0]["content"]
        async for chunk in self._generate_stream(deployment, body, prompt, ctx, chat=False):
            yield chunk

    def _request(self, body: JSON, prompt: str, ctx: CallContext, stream: bool = False) -> bytes:
        reject_unsupported(without_neutral(body), _SUPPORTED, "sagemaker", ctx.drop_params)
        request: JSON = {"inputs": prompt, "parameters": _parameters(body, ctx)}
        if stream:  # TGI and LMI containers stream only when the body asks them to
            request["stream"] = True
        return orjson.dumps(request)

    async def _generate(self, dep: Deployment, body: JSON, prompt: str, ctx: CallContext,
                        chat: bool) -> JSON:
        request = self._request(body, prompt, ctx)
        reply = await self._post(dep, "invocations", request, "application/json", ctx)
        with reply_shape(dep):
            first = reply[0] if isinstance(reply, list) else reply
            text = first["generated_text"]
            if not isinstance(text, str):
                raise TypeError(f"generated_text is a {type(text).__name__}")
            details = first.get("details") or {}
            finish = _FINISH.get(details.get("finish_reason", ""), "stop")
            generated = details.get("generated_tokens")
            completion = int(generated) if generated is not None else _count(dep, text)
        return text_reply(dep.model, text, finish, usage(_count(dep, prompt), completion),
                          chat=chat)

    async def _generate_stream(self, dep: Deployment, body: JSON, prompt: str,
                               ctx: CallContext, chat: bool) -> AsyncIterator[JSON]:
        request = self._request(body, prompt, ctx, stream=True)
        chunk = TextChunks(dep.model, chat=chat)

        url, headers = await self._target(dep, "invocations-response-stream", request,
                                          _EVENTSTREAM, ctx)
        seen: JSON = {}
        opened = False
        try:
            async for piece in self._stream_events(dep, url, request, headers, prompt,
                                                   ctx, seen):
                if chat and not opened:  # only once the endpoint has accepted the call
                    opened = True
                    yield chunk("", first=True)
                if isinstance(piece, str):
                    yield chunk(piece)
                else:
                    yield chunk(None, piece[0])
                    yield chunk.usage(piece[1])
        except RequestError as exc:
            raise _model_error(exc, seen, dep) from None

    async def _stream_events(self, dep: Deployment, url: str, request: bytes,
                             headers: dict[str, str], prompt: str, ctx: CallContext,
                             seen: JSON) -> AsyncIterator[str | tuple[str, JSON]]:
        """The streamed texts, then (finish reason, usage)."""
        streamed: list[str] = []
        details: JSON | None = None
        async with open_stream(ctx, dep, url, request, headers,
                               fields=_fields_seen(seen)) as resp:
            lines = _PayloadLines(getattr(resp, "max_bytes", DEFAULT_MAX_RESPONSE_BYTES))
            with reply_shape(dep):  # a broken frame (EventStreamError) included
                async for event in _payload_events(resp, lines, dep):
                    if "error" in event:
                        raise error_from_response(
                            422 if event.get("error_type") == "validation" else 500,
                            orjson.dumps(event), {}, dep)
                    token = event.get("token") or {}
                    text = token.get("text")
                    if "token" not in event and not streamed:
                        # A container that does not stream sends its whole answer in one part.
                        text, token = event.get("generated_text"), {}
                    if isinstance(text, str) and text and not token.get("special"):
                        streamed.append(text)
                        yield text
                    if isinstance(event.get("details"), dict):
                        details = event["details"]
                done = details or {}
                finish = _FINISH.get(str(done.get("finish_reason", "")), "stop")
                generated = done.get("generated_tokens")
                completion = (int(generated) if generated is not None
                              else _count(dep, "".join(streamed)))
        yield finish, usage(_count(dep, prompt), completion)

    # ------------------------------------------------------------ embeddings

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        clean = reject_unsupported(without_neutral(body), _EMBED_SUPPORTED, "sagemaker",
                                   ctx.drop_params)
        texts = embedding_texts(clean.get("input"), "sagemaker")
        request = orjson.dumps({"text_inputs": texts})
        reply = await self._post(deployment, "invocations", request, "application/json", ctx)
        with reply_shape(deployment):
            vectors = reply["embedding"]
            if vectors and not isinstance(vectors[0], list):  # one input, one flat vector
                vectors = [vectors]
            if len(vectors) != len(texts):
                raise ValueError(f"{len(vectors)} embeddings for {len(texts)} inputs")
            vectors = [[float(x) for x in v] for v in vectors]
        from router.tokens import counter_for

        tokens = counter_for(deployment.model).text(texts)
        fmt = clean.get("encoding_format")
        return {"object": "list", "model": deployment.model,
                "data": [{"object": "embedding", "index": i,
                          "embedding": encode_embedding(v, fmt)}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    # ------------------------------------------------------------ plumbing

    def _signer(self, dep: Deployment) -> AwsSigner:
        return self._signers(dep)

    def _url(self, dep: Deployment, signer: AwsSigner, action: str) -> str:
        root = (dep.api_base or dep.env.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
                or dep.env.get("AWS_ENDPOINT_URL")
                or f"https://runtime.sagemaker.{signer.region}.amazonaws.com")
        return f"{str(root).rstrip('/')}/endpoints/{path_segment(dep.model)}/{action}"

    async def _target(self, dep: Deployment, action: str, content: bytes, accept: str,
                      ctx: CallContext) -> tuple[str, dict[str, str]]:
        signer = self._signer(dep)
        url = self._url(dep, signer, action)
        headers = await signer.sign(url, content, {"content-type": "application/json",
                                                   "accept": accept}, ctx.http)
        # Added after signing: AWS only checks the headers listed as signed.
        headers.update({str(k).lower(): str(v) for k, v in dep.extra_headers.items()})
        return url, headers

    async def _post(self, dep: Deployment, action: str, content: bytes, accept: str,
                    ctx: CallContext) -> Any:
        url, headers = await self._target(dep, action, content, accept, ctx)
        seen: JSON = {}
        try:
            return await post_json(ctx, dep, url, content, headers, fields=_fields_seen(seen),
                                   allow_list=True)
        except RequestError as exc:
            raise _model_error(exc, seen, dep) from None


async def _payload_events(resp: Any, lines: _PayloadLines, dep: Deployment
                          ) -> AsyncIterator[JSON]:
    """The JSON objects of a response stream's PayloadPart frames."""
    decoder = EventStreamDecoder()
    async for data in resp.aiter_bytes():
        for frame in decoder.feed(data):
            if frame.message_type != "event":
                raise _stream_error(frame.event_type, frame.payload, dep)
            if frame.event_type == "PayloadPart":
                for event in lines.feed(frame.payload):
                    yield event
    for event in lines.feed(b"\n"):  # a last line without its newline
        yield event


def _stream_error(kind: str, payload: bytes, dep: Deployment) -> RequestError:
    """An exception frame of the stream (ModelStreamError, InternalStreamFailure)."""
    status = 500 if kind == "InternalStreamFailure" else 502
    return error_from_response(status, payload, {}, dep, fields=_aws_fields)


class _PayloadLines:
    """PayloadPart bytes → the JSON objects on their lines: TGI's `data:{...}` SSE lines or
    LMI's JSON lines, however the parts split them."""

    def __init__(self, limit: int) -> None:
        self._buffer = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[JSON]:
        self._buffer += data
        out: list[JSON] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[:end]).strip()
            del self._buffer[:end + 1]
            if line.startswith(b"data:"):
                line = line[5:].strip()
            if not line or line.startswith((b":", b"event:", b"id:")) or line == b"[DONE]":
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise UpstreamError("the endpoint streamed a line that is not JSON") from None
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = value[0]
            if not isinstance(value, dict):
                raise UpstreamError("the endpoint streamed a line that is not a JSON object")
            out.append(value)
        if len(self._buffer) > self._limit:
            raise UpstreamError("the endpoint streamed a line larger than "
                                f"{self._limit} bytes (router_settings.max_response_bytes)",
                                code="response_too_large")
        return out


