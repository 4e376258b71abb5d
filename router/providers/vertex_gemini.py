"""OpenAI chat ⇄ Gemini `generateContent`: contents, tools, JSON output, replies and chunks.

System messages become `systemInstruction`; assistant turns are role `model`; tool calls are
`functionCall` parts and tool results `functionResponse` parts of a user turn (named after the
call they answer, as Gemini wants); consecutive turns of one role are merged. Images: data:
URLs are sent inline (`inlineData`), other URLs by reference (`fileData`). A `thoughtSignature`
that newer models attach to a function call travels back with the call, inside its id.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from router.errors import BadRequest
from router.prompts import message_text
from router.providers._wire import completion_id, reject_unsupported, usage, without_neutral
from router.providers.vertex_schema import schema

if TYPE_CHECKING:
    from router.providers.base import JSON

__all__ = ["GeminiStream", "from_gemini", "to_gemini"]

_CONFIG = {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "seed": "seed",
           "max_tokens": "maxOutputTokens", "max_completion_tokens": "maxOutputTokens",
           "n": "candidateCount", "presence_penalty": "presencePenalty",
           "frequency_penalty": "frequencyPenalty"}
_SUPPORTED = frozenset({"model", "messages", "stream", "stream_options", "stop", "tools",
                        "tool_choice", "response_format", "user", *_CONFIG})
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
           "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
           "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
           "IMAGE_SAFETY": "content_filter", "LANGUAGE": "content_filter"}
_SIGNATURE = "__thought__"


def _image(url: str) -> JSON:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        return {"inlineData": {"mimeType": header[5:].split(";", 1)[0] or "image/png",
                               "data": data}}
    import mimetypes

    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    return {"fileData": {"mimeType": guessed or "image/jpeg", "fileUri": url}}


def _parts(content: Any) -> list[JSON]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[JSON] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_image(image.get("url", "") if isinstance(image, dict) else str(image)))
        else:
            raise BadRequest(f"vertex_ai does not take message parts of type {kind!r}",
                             param="messages")
    return parts


def _call_part(call: JSON) -> JSON:
    fn = call.get("function") or {}
    raw = fn.get("arguments")
    try:
        args = orjson.loads(raw) if isinstance(raw, str) and raw else (raw or {})
    except orjson.JSONDecodeError as exc:
        raise BadRequest("tool call arguments must be JSON", param="messages") from exc
    part: JSON = {"functionCall": {"name": fn.get("name"), "args": args}}
    _, sep, signature = str(call.get("id") or "").partition(_SIGNATURE)
    if sep and signature:
        part["thoughtSignature"] = signature
    return part


def _response_part(message: JSON, names: dict[str, str]) -> JSON:
    call_id = str(message.get("tool_call_id") or "")
    name = names.get(call_id) or message.get("name")
    if not name:
        raise BadRequest("a tool message must answer a tool call of an earlier assistant "
                         "message (Gemini names a result after its function)", param="messages")
    text = message_text(message.get("content"))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return {"functionResponse": {"name": name, "response": value if isinstance(value, dict)
                                 else {"content": text}}}


def _contents(messages: list[JSON]) -> tuple[list[str], list[JSON]]:
    system: list[str] = []
    contents: list[JSON] = []
    names: dict[str, str] = {}  # tool call id → function name
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(message_text(message.get("content")))
            continue
        if role == "assistant":
            parts = _parts(message.get("content"))
            for call in message.get("tool_calls") or ():
                names[str(call.get("id"))] = str((call.get("function") or {}).get("name"))
                parts.append(_call_part(call))
            role = "model"
        elif role == "tool":
            parts, role = [_response_part(message, names)], "user"
        elif role == "user":
            parts = _parts(message.get("content"))
        else:
            raise BadRequest(f"unsupported message role {role!r}", param="messages")
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return system, contents


def _tool_config(choice: Any) -> JSON | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"functionCallingConfig": {"mode": "AUTO"}}
    if choice == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if choice == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        return {"functionCallingConfig": {"mode": "ANY",
                                          "allowedFunctionNames": [choice["function"]["name"]]}}
    raise BadRequest(f"unsupported tool_choice {choice!r}", param="tool_choice")


def _declaration(tool: JSON) -> JSON:
    if tool.get("type", "function") != "function":
        raise BadRequest(f"vertex_ai does not take tools of type {tool.get('type')!r}",
                         param="tools")
    fn = tool.get("function") or {}
    out: JSON = {"name": fn.get("name")}
    if fn.get("description"):
        out["description"] = fn["description"]
    if fn.get("parameters") and (fn["parameters"].get("properties") or
                                 fn["parameters"].get("type") != "object"):
        out["parameters"] = schema(fn["parameters"])
    return out


def to_gemini(body: JSON, drop: bool) -> JSON:
    """The `generateContent` request for an OpenAI chat body."""
    body = reject_unsupported(without_neutral(body), _SUPPORTED, "vertex_ai", drop)
    system, contents = _contents(body.get("messages") or [])
    request: JSON = {"contents": contents}
    if any(system):
        request["systemInstruction"] = {"parts": [{"text": "\n".join(s for s in system if s)}]}
    config = {_CONFIG[k]: v for k, v in body.items() if k in _CONFIG}
    if "stop" in body:
        stop = body["stop"]
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        spec = (fmt.get("json_schema") or {}).get("schema")
        if fmt.get("type") == "json_schema" and spec:
            config["responseSchema"] = schema(spec)
    elif fmt.get("type") not in (None, "text"):
        raise BadRequest(f"unsupported response_format {fmt.get('type')!r}",
                         param="response_format")
    if config:
        request["generationConfig"] = config
    if body.get("tools"):
        request["tools"] = [{"functionDeclarations": [_declaration(t) for t in body["tools"]]}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config is not None:
            request["toolConfig"] = tool_config
    return request


# ---------------------------------------------------------------- replies


def _call(part: JSON) -> JSON:
    fn = part["functionCall"]
    call_id = str(fn.get("id") or f"call_{uuid.uuid4().hex[:24]}")
    if part.get("thoughtSignature"):
        call_id += _SIGNATURE + str(part["thoughtSignature"])
    return {"id": call_id, "type": "function",
            "function": {"name": fn["name"], "arguments": orjson.dumps(fn.get("args") or {})
                         .decode()}}


def _usage(meta: JSON) -> JSON:
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    out = usage(int(meta.get("promptTokenCount") or 0),
                int(meta.get("candidatesTokenCount") or 0) + thoughts)
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    if meta.get("cachedContentTokenCount"):
        out["prompt_tokens_details"] = {"cached_tokens": int(meta["cachedContentTokenCount"])}
    return out


def _finish(reason: Any, has_calls: bool) -> str:
    finish = _FINISH.get(str(reason or "STOP"), "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def from_gemini(reply: JSON, model: str) -> JSON:
    """A `chat.completion` from a `generateContent` reply (read inside `reply_shape`)."""
    choices = []
    for i, candidate in enumerate(reply.get("candidates") or ()):
        text: list[str] = []
        thoughts: list[str] = []
        calls: list[JSON] = []
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                calls.append(_call(part))
            elif "text" in part:
                (thoughts if part.get("thought") else text).append(str(part["text"]))
        message: JSON = {"role": "assistant", "content": "".join(text) if text or not calls
                         else None}
        if thoughts:
            message["reasoning_content"] = "".join(thoughts)
        if calls:
            message["tool_calls"] = calls
        choices.append({"index": candidate.get("index", i), "message": message,
                        "logprobs": None,
                        "finish_reason": _finish(candidate.get("finishReason"), bool(calls))})
    if not choices and (reply.get("promptFeedback") or {}).get("blockReason"):
        choices.append({"index": 0, "message": {"role": "assistant", "content": None},
                        "logprobs": None, "finish_reason": "content_filter"})
    return {"id": reply.get("responseId") or completion_id(), "object": "chat.completion",
            "created": int(time.time()), "model": reply.get("modelVersion") or model,
            "choices": choices, "usage": _usage(reply.get("usageMetadata") or {})}


class GeminiStream:
    """Turns `streamGenerateContent` replies into OpenAI chunks; usage comes last."""

    def __init__(self, model: str) -> None:
        self.head: JSON = {"id": completion_id(), "object": "chat.completion.chunk",
                           "created": int(time.time()), "model": model}
        self.started: set[int] = set()
        self.calls: dict[int, int] = {}  # candidate index → tool calls sent
        self.meta: JSON | None = None

    def _chunk(self, index: int, delta: JSON, finish: str | None = None) -> JSON:
        return {**self.head, "choices": [{"index": index, "delta": delta, "logprobs": None,
                                          "finish_reason": finish}]}

    def translate(self, reply: JSON) -> list[JSON]:
        if reply.get("responseId"):
            self.head["id"] = reply["responseId"]
        if reply.get("modelVersion"):
            self.head["model"] = reply["modelVersion"]
        if reply.get("usageMetadata"):
            self.meta = reply["usageMetadata"]
        out: list[JSON] = []
        candidates = reply.get("candidates") or ()
        if not candidates and (reply.get("promptFeedback") or {}).get("blockReason"):
            out.append(self._chunk(0, {"role": "assistant", "content": None}, "content_filter"))
        for i, candidate in enumerate(candidates):
            index = candidate.get("index", i)
            if index not in self.started:
                self.started.add(index)
                out.append(self._chunk(index, {"role": "assistant", "content": ""}))
            for part in (candidate.get("content") or {}).get("parts") or ():
                if "functionCall" in part:
                    n = self.calls.get(index, 0)
                    self.calls[index] = n + 1
                    out.append(self._chunk(index, {"tool_calls": [{"index": n,
                                                                   **_call(part)}]}))
                elif part.get("text"):
                    key = "reasoning_content" if part.get("thought") else "content"
                    out.append(self._chunk(index, {key: str(part["text"])}))
            if candidate.get("finishReason"):
                out.append(self._chunk(index, {}, _finish(candidate["finishReason"],
                                                          bool(self.calls.get(index)))))
        return out

    def usage_chunk(self) -> JSON | None:
        return {**self.head, "choices": [], "usage": _usage(self.meta)} if self.meta else None
