"""OpenAI and every OpenAI-compatible server (vLLM, LM Studio, hosted prefixes like `groq/`).

The body is already OpenAI's format, so the adapter only picks the URL and headers, asks for
usage on streams, and turns failures into laneway errors. The key comes from the deployment,
else from the provider's environment variable — but the `OPENAI_API_KEY` variable is sent only
to OpenAI's own URL, never to a custom `api_base` (set `api_key` for those).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest, InternalError
from router.providers._per_deployment import PerDeployment
from router.providers._wire import (
    chunks_from_completion,
    clean_usage,
    embedded_error,
    is_json,
    iter_sse,
    open_stream,
    parse_chunk,
    post_json,
    read_reply,
    reply_shape,
)
from router.providers.catalog import hosted_base, hosted_key

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["OpenAIProvider"]

_HEADER_CACHE_MAX = 4096


class OpenAIProvider:
    name = "openai"

    def __init__(self) -> None:
        # Headers and URLs depend only on the deployment's provider, base, key and environment,
        # never on its model: every deployment made from one wildcard entry shares its id.
        # Each entry remembers the params it was built from: a reload (or a secret refresh)
        # builds new deployments with the same id but perhaps a new key.
        self._headers = PerDeployment(lambda dep: self.build_headers(dep))
        self._bases = PerDeployment(_base_of)

    # ------------------------------------------------------------ endpoints

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        return await self._call(deployment, "chat/completions", body, ctx)

    def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        return self._stream(deployment, "chat/completions", body, ctx)

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        return await self._call(deployment, "completions", body, ctx)

    def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        return self._stream(deployment, "completions", body, ctx)

    async def embed(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        return await self._call(deployment, "embeddings", body, ctx)

    # ------------------------------------------------------------ Responses, passed through

    def speaks(self, deployment: Deployment, kind: str) -> bool:
        """OpenAI and Azure OpenAI serve the Responses API themselves; other OpenAI-compatible
        servers (hosted_vllm/, groq/, an `openai/` model with a custom `api_base`) are sent
        its chat translation, unless `model_info.native_responses` says otherwise."""
        if kind != "responses":
            return False
        asked = deployment.model_info.get("native_responses")
        if isinstance(asked, bool):
            return asked
        if deployment.provider == "azure":
            return True
        base = deployment.api_base
        return deployment.provider == "openai" and (
            base is None or base.rstrip("/").startswith("https://api.openai.com"))

    def responses_url(self, dep: Deployment) -> str:
        return self.url(dep, "responses")

    async def native_call(self, deployment: Deployment, kind: str, body: JSON,
                          ctx: CallContext) -> JSON:
        result: JSON = await post_json(ctx, deployment, self.responses_url(deployment),
                                       {**body, "stream": False}, self.headers(deployment))
        return result

    async def native_stream(self, deployment: Deployment, kind: str, body: JSON,
                            ctx: CallContext) -> AsyncIterator[JSON]:
        payload = {**body, "stream": True}
        async with open_stream(ctx, deployment, self.responses_url(deployment), payload,
                               self.headers(deployment)) as resp:
            async for _event, data in iter_sse(resp):
                if data == b"[DONE]":
                    return
                event = parse_chunk(data, deployment)
                if event.get("type") == "error":
                    # Before the first byte reaches the client this is still a status.
                    raise embedded_error({"error": event}, data, {}, deployment, default=500)
                yield event

    # ------------------------------------------------------------ plumbing

    async def _call(self, dep: Deployment, path: str, body: JSON, ctx: CallContext) -> JSON:
        result: JSON = await post_json(ctx, dep, self.url(dep, path), body, self.headers(dep))
        with reply_shape(dep):
            return _checked(result, "data" if path == "embeddings" else "choices")

    async def _stream(
        self, dep: Deployment, path: str, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        url, headers = self.url(dep, path), self.headers(dep)
        options = body.get("stream_options") or {}
        # Always ask for usage so the router can reconcile the tokens it reserved.
        payload = {**body, "stream": True, "stream_options": {**options, "include_usage": True}}
        try:
            async for chunk in self._sse_chunks(dep, url, payload, headers, ctx):
                yield chunk
        except BadRequest as exc:
            # A few OpenAI-compatible servers reject stream_options: try once without it.
            if "stream_options" not in exc.message or "stream_options" in body:
                raise
            payload.pop("stream_options")
            async for chunk in self._sse_chunks(dep, url, payload, headers, ctx):
                yield chunk

    async def _sse_chunks(
        self, dep: Deployment, url: str, payload: JSON, headers: dict[str, str], ctx: CallContext
    ) -> AsyncIterator[JSON]:
        async with open_stream(ctx, dep, url, payload, headers, json_ok=True) as resp:
            if is_json(resp):
                # Some servers ignore `stream` and answer with the whole completion: relay it
                # as the stream it would have been rather than lose it.
                result = await read_reply(resp, dep)
                with reply_shape(dep):
                    chunks = chunks_from_completion(_checked(result, "choices"),
                                                    text="messages" not in payload)
                for chunk in chunks:
                    yield chunk
                return
            with reply_shape(dep):
                async for _event, data in iter_sse(resp):
                    if data == b"[DONE]":
                        return
                    chunk = parse_chunk(data, dep)
                    if chunk.get("error"):
                        # An error after the stream started arrives as an SSE event.
                        raise embedded_error(chunk, data, {}, dep)
                    yield _checked(chunk, "choices", chunk=True)

    def url(self, dep: Deployment, path: str) -> str:
        return f"{self._bases(dep)}/{path}"

    def headers(self, dep: Deployment) -> dict[str, str]:
        return self._headers(dep)

    def build_headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = dep.api_key
        if key is None and (dep.provider != "openai" or dep.api_base is None):
            key = hosted_key(dep.provider, dep.env)
        if key:
            headers["authorization"] = f"Bearer {key}"
        if dep.organization:
            headers["openai-organization"] = dep.organization
        headers.update(_str_headers(dep.extra_headers))
        return headers


def _checked(reply: JSON, items: str, chunk: bool = False) -> JSON:
    """`reply` if its `choices` (or `data`) is a list of objects; its usage made countable.
    A reply (or a stream chunk that carries no usage) without that list is no answer at all.
    Raises TypeError/ValueError otherwise (inside `reply_shape`: a 502)."""
    listed = reply.get(items)
    if listed is None and not (chunk and reply.get("usage") is not None):
        raise ValueError(f"the reply has no `{items}`")
    if listed is not None:
        if type(listed) is not list:
            raise TypeError(f"{items} is a {type(listed).__name__}, not a list")
        inner = "delta" if chunk else "message"
        for item in listed:
            if type(item) is not dict:
                raise TypeError(f"{items} holds a {type(item).__name__}, not an object")
            said = item.get(inner)  # relayed as it is: a client's SDK reads it as an object
            if said is None:
                continue
            if type(said) is not dict:
                raise TypeError(f"a choice's `{inner}` is a {type(said).__name__}, not an object")
            calls = said.get("tool_calls")
            if calls is not None and not (type(calls) is list
                                          and all(type(c) is dict for c in calls)):
                raise TypeError(f"a choice's `{inner}.tool_calls` is not a list of objects")
    raw = reply.get("usage")
    if raw is not None:
        fixed = clean_usage(raw)
        if fixed is not raw:
            reply["usage"] = fixed
    return reply


def _str_headers(extra: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (extra or {}).items()}


def _base_of(dep: Deployment) -> str:
    raw = dep.api_base or hosted_base(dep.provider, dep.env)
    if not raw:
        raise InternalError(
            f"deployment {dep.model_name!r} ({dep.provider}/{dep.model}) has no api_base")
    return raw.rstrip("/")
