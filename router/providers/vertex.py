"""Vertex AI (`vertex_ai/<model>`): Gemini, Claude on Vertex, and text embeddings.

Gemini models go to `generateContent` (`streamGenerateContent?alt=sse` for streams; the
translation is in `vertex_gemini`). `vertex_ai/claude-*` goes to Anthropic's publisher,
`rawPredict` / `streamRawPredict`, in Anthropic's Messages format with `anthropic_version` in
the body; the translation is the Anthropic adapter's own, and Messages requests pass through
unchanged. Embeddings go to `predict` (instances/predictions).

Where: https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}
/publishers/{google|anthropic}/models/{model}:{method} (location `global`: the host
aiplatform.googleapis.com). `vertex_project` (else VERTEXAI_PROJECT, GOOGLE_CLOUD_PROJECT, the
credentials' project, the metadata server's), `vertex_location` (else VERTEXAI_LOCATION, else
us-central1); `api_base` replaces the scheme and host. Auth: see `gcp_auth`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest, RequestError
from router.providers._urls import path_segment
from router.providers._via_chat import CompletionsViaChat
from router.providers._wire import (
    embedded_error,
    embedding_texts,
    encode_embedding,
    error_from_response,
    iter_sse,
    open_stream,
    parse_chunk,
    post_json,
    reject_unsupported,
    reply_shape,
    without_neutral,
)
from router.providers.anthropic import (
    AnthropicProvider,
    _fields,
    _from_message,
    _StreamState,
)
from router.providers.gcp_auth import GcpAuth
from router.providers.vertex_gemini import GeminiStream, from_gemini, to_gemini

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["VertexProvider"]

ANTHROPIC_VERSION = "vertex-2023-10-16"
_PLACE = ("vertex_project", "vertex_ai_project", "vertex_location", "vertex_ai_location",
          "vertex_credentials", "vertex_ai_credentials")
_EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions", "user",
                              "task_type"})


def _is_claude(dep: Deployment) -> bool:
    return dep.model.startswith("claude")


class _Target:
    """A deployment's project, location, host and credentials, resolved once."""

    def __init__(self, dep: Deployment) -> None:
        params, env = dep.params, dep.env
        self.auth = GcpAuth(params, env, f"{dep.provider}/{dep.model}")
        self.project: str | None = str(
            params.get("vertex_project") or params.get("vertex_ai_project")
            or env.get("VERTEXAI_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT")
            or self.auth.project or "") or None
        self.location = str(params.get("vertex_location") or params.get("vertex_ai_location")
                            or env.get("VERTEXAI_LOCATION") or "us-central1")
        host = ("aiplatform.googleapis.com" if self.location == "global"
                else f"{self.location}-aiplatform.googleapis.com")
        self.base = str(dep.api_base or f"https://{host}").rstrip("/")


class VertexProvider(CompletionsViaChat):
    name = "vertex_ai"

    def __init__(self) -> None:
        self._targets: dict[str, _Target] = {}

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        if _is_claude(deployment):
            request = self._claude_body(self._claude_request(deployment, body, ctx, False))
            with reply_shape(deployment):
                return _from_message(await self._post(deployment, "rawPredict", request, ctx))
        reply = await self._post(deployment, "generateContent",
                                 to_gemini(body, ctx.drop_params), ctx)
        with reply_shape(deployment):
            return from_gemini(reply, deployment.model)

    async def chat_stream(self, deployment: Deployment, body: JSON, ctx: CallContext
                          ) -> AsyncIterator[JSON]:
        if _is_claude(deployment):
            request = self._claude_body(self._claude_request(deployment, body, ctx, True))
            state = _StreamState()
            async for event, data in self._sse(deployment, "streamRawPredict", request, ctx):
                with reply_shape(deployment):  # translated here, outside the reader's block
                    chunks = state.translate(event, data)
                for chunk in chunks:
                    yield chunk
            return
        gemini = GeminiStream(deployment.model)
        async for _, data in self._sse(deployment, "streamGenerateContent?alt=sse",
                                       to_gemini(body, ctx.drop_params), ctx):
            with reply_shape(deployment):
                chunks = gemini.translate(data)
            for chunk in chunks:
                yield chunk
        with reply_shape(deployment):
            last = gemini.usage_chunk()
        if last is not None:
            yield last

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        body = reject_unsupported(without_neutral(body), _EMBED_SUPPORTED, "vertex_ai",
                                  ctx.drop_params)
        texts = embedding_texts(body.get("input"), "vertex_ai")
        instance: JSON = {}
        if body.get("task_type"):
            instance["task_type"] = body["task_type"]
        request: JSON = {"instances": [{**instance, "content": t} for t in texts]}
        if body.get("dimensions"):
            request["parameters"] = {"outputDimensionality": body["dimensions"]}
        reply = await self._post(deployment, "predict", request, ctx)
        fmt = body.get("encoding_format")
        with reply_shape(deployment):
            data, tokens = [], 0
            for i, prediction in enumerate(reply["predictions"]):
                embedding = prediction["embeddings"]
                tokens += int((embedding.get("statistics") or {}).get("token_count") or 0)
                data.append({"object": "embedding", "index": i,
                             "embedding": encode_embedding(list(embedding["values"]), fmt)})
        return {"object": "list", "model": deployment.model, "data": data,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    # ------------------------------------------------------------ Messages, passed through

    def speaks(self, deployment: Deployment, kind: str) -> bool:
        return kind == "messages" and _is_claude(deployment)

    async def native_call(self, deployment: Deployment, kind: str, body: JSON,
                          ctx: CallContext) -> JSON:
        reply: JSON = await self._post(deployment, "rawPredict", self._claude_body(body), ctx)
        return reply

    async def native_stream(self, deployment: Deployment, kind: str, body: JSON,
                            ctx: CallContext) -> AsyncIterator[JSON]:
        request = {**self._claude_body(body), "stream": True}
        async for _, data in self._sse(deployment, "streamRawPredict", request, ctx):
            yield data

    # ------------------------------------------------------------ plumbing

    @staticmethod
    def _claude_request(dep: Deployment, body: JSON, ctx: CallContext, stream: bool) -> JSON:
        # The Anthropic adapter's own translation; it reads nothing of the deployment's URL.
        return AnthropicProvider()._request(dep, body, ctx, stream)

    @staticmethod
    def _claude_body(body: JSON) -> JSON:
        # Vertex names the model in the URL; the API version goes in the body.
        out = {k: v for k, v in body.items() if k != "model"}
        out["anthropic_version"] = ANTHROPIC_VERSION
        if not out.get("stream"):
            out.pop("stream", None)
        return out

    def _target(self, dep: Deployment) -> _Target:
        # Keyed by what it is made of too: a reload that rotates a key keeps the deployment id.
        key = repr((dep.id, dep.api_base, *(dep.params.get(name) for name in _PLACE)))
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(dep)
        return target

    async def _url(self, dep: Deployment, method: str, ctx: CallContext) -> tuple[str, str]:
        target = self._target(dep)
        if target.project is None:
            target.project = await target.auth.metadata_project(ctx.http)
            if target.project is None:
                raise BadRequest(f"{dep.provider}/{dep.model}: no Google Cloud project: set "
                                 "vertex_project (or VERTEXAI_PROJECT)", param="model")
        token = await target.auth.token(ctx.http)
        # Per call, not per target: a wildcard entry's one deployment serves many models.
        publisher = "anthropic" if _is_claude(dep) else "google"
        # "@" (claude-3-5-sonnet@20240620) is a legal path character Vertex expects as is.
        model = path_segment(dep.model).replace("%40", "@")
        url = (f"{target.base}/v1/projects/{path_segment(target.project)}/locations/"
               f"{path_segment(target.location)}/publishers/{publisher}/models/"
               f"{model}:{method}")
        return url, token

    def _headers(self, dep: Deployment, token: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        headers.update({str(k).lower(): str(v) for k, v in dep.extra_headers.items()})
        return headers

    def _refused(self, dep: Deployment, token: str, exc: RequestError) -> None:
        if exc.status == 401:  # revoked or expired early: the next request fetches a new one
            self._target(dep).auth.forget(token)

    async def _post(self, dep: Deployment, method: str, request: JSON, ctx: CallContext) -> Any:
        url, token = await self._url(dep, method, ctx)
        try:
            return await post_json(ctx, dep, url, request, self._headers(dep, token),
                                   fields=_fields if _is_claude(dep) else None)
        except RequestError as exc:
            self._refused(dep, token, exc)
            raise

    async def _sse(self, dep: Deployment, method: str, request: JSON, ctx: CallContext
                   ) -> AsyncIterator[tuple[str, JSON]]:
        """(event, JSON data) of one streamed call; error events and bodies raise."""
        url, token = await self._url(dep, method, ctx)
        fields = _fields if _is_claude(dep) else None
        try:
            async with open_stream(ctx, dep, url, request, self._headers(dep, token),
                                   fields=fields) as resp:
                with reply_shape(dep):
                    async for event, raw in iter_sse(resp):
                        if event == "error":  # Anthropic's error event mid-stream
                            raise error_from_response(529, raw, {}, dep, fields=fields)
                        data = parse_chunk(raw, dep)
                        if data.get("type") == "error":
                            raise error_from_response(529, raw, {}, dep, fields=fields)
                        if "error" in data:  # Google's error body as a stream event
                            raise embedded_error(data, raw, {}, dep, fields)
                        yield event, data
        except RequestError as exc:
            self._refused(dep, token, exc)
            raise
