"""Hugging Face Text Generation Inference (`huggingface/<repo>` with `api_base`).

Chat goes to TGI's OpenAI-compatible route (`/v1/chat/completions`), which applies the model's
own chat template — unless the deployment configures a custom prompt template
(`router.prompts`): then the prompt is built exactly as configured and sent to `/generate`
(`/generate_stream` for streams). Text completions always use `/generate`; embeddings use
`/v1/embeddings` (a Text Embeddings Inference server). Without `api_base` the Hugging Face
router is used. The key is `api_key`, else HF_TOKEN / HUGGINGFACE_API_KEY.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest
from router.prompts import render, template_for
from router.providers._wire import (
    TextChunks,
    error_from_response,
    iter_sse,
    open_stream,
    parse_chunk,
    post_json,
    reject_unsupported,
    reply_shape,
    text_reply,
    usage,
    without_neutral,
)
from router.providers.openai import OpenAIProvider, _str_headers

if TYPE_CHECKING:
    from router.groups import Deployment
    from router.providers.base import JSON, CallContext

__all__ = ["TGIProvider"]

HF_ROUTER = "https://router.huggingface.co"
_SUPPORTED = frozenset({"model", "messages", "prompt", "stream", "stream_options", "max_tokens",
                        "max_completion_tokens", "temperature", "top_p", "stop", "seed",
                        "frequency_penalty", "user"})
_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


class TGIProvider(OpenAIProvider):
    name = "huggingface"

    async def chat(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        template = template_for(deployment.params)
        if template is None:
            return await super().chat(deployment, body, ctx)
        prompt = render(body.get("messages") or [], template)
        return await self._generate(deployment, body, prompt, ctx, chat=True)

    async def chat_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        template = template_for(deployment.params)
        if template is None:
            async for chunk in super().chat_stream(deployment, body, ctx):
                yield chunk
            return
        prompt = render(body.get("messages") or [], template)
        async for chunk in self._generate_stream(deployment, body, prompt, ctx, chat=True):
            yield chunk

    async def text_completion(self, deployment: Deployment, body: JSON, ctx: CallContext) -> JSON:
        return await self._generate(deployment, body, _prompt(body), ctx, chat=False)

    async def text_completion_stream(
        self, deployment: Deployment, body: JSON, ctx: CallContext
    ) -> AsyncIterator[JSON]:
        async for chunk in self._generate_stream(deployment, body, _prompt(body), ctx,
                                                 chat=False):
            yield chunk

    # ------------------------------------------------------------ /generate

    async def _generate(self, dep: Deployment, body: JSON, prompt: str, ctx: CallContext,
                        chat: bool) -> JSON:
        request = {"inputs": prompt, "parameters": _parameters(body, ctx)}
        reply = await post_json(ctx, dep, self._root(dep) + "/generate", request,
                                self.headers(dep), allow_list=True)
        if isinstance(reply, list):  # the hosted Inference API wraps the answer in a list
            reply = reply[0]
        with reply_shape(dep):
            details = reply.get("details") or {}
            text = reply.get("generated_text", "")
            if not isinstance(text, str):
                raise TypeError(f"generated_text is a {type(text).__name__}")
            finish = _FINISH.get(details.get("finish_reason", ""), "stop")
            tokens = usage(_count(dep, prompt), int(details.get("generated_tokens") or 0))
        return text_reply(dep.model, text, finish, tokens, chat=chat)

    async def _generate_stream(self, dep: Deployment, body: JSON, prompt: str,
                               ctx: CallContext, chat: bool) -> AsyncIterator[JSON]:
        request = {"inputs": prompt, "parameters": _parameters(body, ctx), "stream": True}
        chunk = TextChunks(dep.model, chat=chat)

        if chat:
            yield chunk("", first=True)
        async with open_stream(ctx, dep, self._root(dep) + "/generate_stream", request,
                               self.headers(dep)) as resp:
            with reply_shape(dep):
                async for _event, data in iter_sse(resp):
                    event = parse_chunk(data, dep)
                    if "error" in event:
                        raise error_from_response(422 if event.get("error_type") == "validation"
                                                  else 500, data, {}, dep)
                    token = event.get("token") or {}
                    if token.get("text") and not token.get("special"):
                        yield chunk(str(token["text"]))
                    details = event.get("details")
                    if details is not None:
                        yield chunk(None, _FINISH.get(details.get("finish_reason", ""), "stop"))
                        yield chunk.usage(usage(
                            _count(dep, prompt), int(details.get("generated_tokens") or 0)))

    # ------------------------------------------------------------ endpoints

    def _root(self, dep: Deployment) -> str:
        base = (dep.api_base or HF_ROUTER).rstrip("/")
        return base.removesuffix("/v1")

    def url(self, dep: Deployment, path: str) -> str:
        return f"{self._root(dep)}/v1/{path}"

    def build_headers(self, dep: Deployment) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = dep.api_key or dep.env.get("HF_TOKEN") or dep.env.get("HUGGINGFACE_API_KEY")
        if key:
            headers["authorization"] = f"Bearer {key}"
        headers.update(_str_headers(dep.extra_headers))
        return headers


def _prompt(body: JSON) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise BadRequest("TGI takes one prompt string per request", param="prompt")
        prompt = prompt[0]
    return str(prompt or "")


def _parameters(body: JSON, ctx: CallContext) -> JSON:
    """OpenAI params as TGI `parameters` (TGI rejects temperature 0 and top_p 1)."""
    body = reject_unsupported(without_neutral(body), _SUPPORTED, "huggingface", ctx.drop_params)
    params: JSON = {"details": True}
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    if max_tokens:
        params["max_new_tokens"] = int(max_tokens)
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature > 0:
            params["temperature"] = temperature
            params["do_sample"] = True
        else:
            params["do_sample"] = False  # greedy: what temperature 0 means
    top_p = body.get("top_p")
    if top_p is not None and 0 < top_p < 1:
        params["top_p"] = top_p
    if "stop" in body:
        stop: Any = body["stop"]
        params["stop"] = [stop] if isinstance(stop, str) else list(stop)
    for key in ("seed", "frequency_penalty"):
        if key in body:
            params[key] = body[key]
    return params


def _count(dep: Deployment, prompt: str) -> int:
    """Prompt tokens: /generate does not report them, so count with the model's tokenizer."""
    from router.tokens import counter_for

    return counter_for(dep.model, dep.model_info.get("custom_tokenizer")).text(prompt)
