"""Bedrock InvokeModel bodies: embeddings (Titan, Cohere) and raw-prompt text models.

Each model family has its own JSON; this module builds the request bodies and reads the
answers back into OpenAI's numbers. Families are recognised after any cross-region inference
prefix (`us.`, `eu.`, `apac.`, `global.`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.errors import BadRequest
from router.providers._wire import embedding_texts, reject_unsupported, without_neutral

if TYPE_CHECKING:
    from router.providers.base import JSON

__all__ = ["embedding_bodies", "embedding_vectors", "family", "text_body", "text_piece",
           "text_reply"]

_REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.")
_EMBED_SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions", "user",
                              "input_type"})
_TEXT_SUPPORTED = frozenset({"model", "messages", "prompt", "stream", "stream_options",
                             "max_tokens", "max_completion_tokens", "temperature", "top_p",
                             "stop", "user"})


def family(model_id: str) -> str:
    """"meta", "mistral", "amazon.titan-text", "amazon.titan-embed", "cohere.embed", ... ."""
    name = model_id
    for prefix in _REGION_PREFIXES:
        name = name.removeprefix(prefix)
    for known in ("amazon.titan-embed", "amazon.titan-text", "cohere.embed", "meta", "mistral"):
        if name.startswith(known):
            return known
    return name.split(".", 1)[0]


def embedding_bodies(model_id: str, body: JSON, drop_params: bool) -> tuple[list[JSON], int]:
    """(InvokeModel bodies, number of inputs): Titan takes one text per call, Cohere many."""
    body = reject_unsupported(without_neutral(body), _EMBED_SUPPORTED, "bedrock", drop_params)
    texts = embedding_texts(body.get("input"), "bedrock")
    kind = family(model_id)
    if kind == "amazon.titan-embed":
        extra = {"dimensions": body["dimensions"]} if "dimensions" in body else {}
        return [{"inputText": t, **extra} for t in texts], len(texts)
    if kind == "cohere.embed":
        return [{"texts": texts, "input_type": body.get("input_type", "search_document")}], len(
            texts)
    raise BadRequest(f"bedrock embeddings support amazon.titan-embed-* and cohere.embed-* "
                     f"models, not {model_id!r}", param="model")


def embedding_vectors(model_id: str, replies: list[JSON]) -> tuple[list[list[float]], int | None]:
    """(vectors in input order, prompt tokens if the model reports them)."""
    if family(model_id) == "amazon.titan-embed":
        return ([r["embedding"] for r in replies],
                sum(int(r.get("inputTextTokenCount") or 0) for r in replies))
    embeddings = replies[0]["embeddings"]
    if isinstance(embeddings, dict):  # asked for with embedding_types
        embeddings = embeddings.get("float") or next(iter(embeddings.values()))
    return list(embeddings), None


def text_body(model_id: str, prompt: str, body: JSON, drop_params: bool) -> JSON:
    """An InvokeModel body for a raw-prompt text model (meta, mistral, amazon.titan-text)."""
    body = reject_unsupported(without_neutral(body), _TEXT_SUPPORTED, "bedrock", drop_params)
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    kind = family(model_id)
    if kind == "meta":
        out: JSON = {"prompt": prompt}
        if max_tokens:
            out["max_gen_len"] = int(max_tokens)
    elif kind == "mistral":
        out = {"prompt": prompt}
        if max_tokens:
            out["max_tokens"] = int(max_tokens)
        if stops:
            out["stop"] = stops
    elif kind == "amazon.titan-text":
        config: JSON = {}
        if max_tokens:
            config["maxTokenCount"] = int(max_tokens)
        for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
            if ours in body:
                config[theirs] = body[ours]
        if stops:
            config["stopSequences"] = stops
        return {"inputText": prompt, "textGenerationConfig": config}
    else:
        raise BadRequest(f"custom prompt templates on bedrock work with meta.*, mistral.* and "
                         f"amazon.titan-text-* models, not {model_id!r}", param="model")
    for key in ("temperature", "top_p"):
        if key in body:
            out[key] = body[key]
    return out


def text_reply(model_id: str, reply: JSON) -> tuple[str, str, int | None, int | None]:
    """(text, OpenAI finish reason, prompt tokens, completion tokens) of a text model."""
    kind = family(model_id)
    if kind == "meta":
        finish = "length" if reply.get("stop_reason") == "length" else "stop"
        return (reply.get("generation", ""), finish, reply.get("prompt_token_count"),
                reply.get("generation_token_count"))
    if kind == "mistral":
        first = (reply.get("outputs") or [{}])[0]
        finish = "length" if first.get("stop_reason") == "length" else "stop"
        return first.get("text", ""), finish, None, None
    first = (reply.get("results") or [{}])[0]
    finish = "length" if first.get("completionReason") == "LENGTH" else "stop"
    return (first.get("outputText", ""), finish, reply.get("inputTextTokenCount"),
            first.get("tokenCount"))


def text_piece(model_id: str, event: JSON) -> tuple[str, str | None, int | None, int | None]:
    """(text, finish reason once known, prompt tokens, completion tokens) of one chunk of an
    InvokeModelWithResponseStream of a text model; the counts come with the last chunk."""
    metrics = event.get("amazon-bedrock-invocationMetrics") or {}
    prompt, completion = metrics.get("inputTokenCount"), metrics.get("outputTokenCount")
    kind = family(model_id)
    if kind == "meta":
        reason = event.get("stop_reason")
        text = event.get("generation") or ""
    elif kind == "mistral":
        first = (event.get("outputs") or [{}])[0]
        reason, text = first.get("stop_reason"), first.get("text") or ""
    else:
        reason, text = event.get("completionReason"), event.get("outputText") or ""
    finish = None if reason is None else (
        "length" if str(reason).lower() in ("length", "max_tokens") else "stop")
    return str(text), finish, prompt, completion
