"""Anthropic's Messages API ⇄ chat completions, for deployments that do not speak it.

`to_chat` maps a Messages request to a chat body (`system`, content blocks, `tool_use` /
`tool_result`, tools, `tool_choice`, `stop_sequences`, `metadata.user_id`); `from_chat` maps a
chat completion to a `message`; `MessagesStream` turns chat chunks into Anthropic's stream
events (`message_start`, `content_block_start` / `_delta` / `_stop`, `message_delta`,
`message_stop`). Anthropic deployments never come here: they get the request as it was sent.
The opposite direction (chat → Messages) is the Anthropic adapter's
(`router/providers/anthropic.py`); its usage reading is shared (`usage_to_chat`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from router.errors import BadRequest
from router.translate.usage import chat_counts

JSON = dict[str, Any]

__all__ = ["MessagesStream", "from_chat", "new_id", "stream_meter", "to_chat", "usage_to_chat"]

_LANEWAY = ("priority", "mock_response", "timeout", "num_retries")
_ACCEPTED = frozenset({
    "model", "messages", "system", "max_tokens", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "tools", "tool_choice", "metadata", "thinking", "service_tier",
    *_LANEWAY,
})
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
         "function_call": "tool_use", "content_filter": "refusal"}
_EFFORT = ((4096, "low"), (16384, "medium"))


def new_id() -> str:
    return f"msg_{os.urandom(12).hex()}"  # 24 hex digits, as before, without a uuid4's cost


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def _anthropic_usage(raw: JSON) -> JSON:
    # The adapter's own reading, imported when a native reply first needs it (cold start).
    from router.providers.anthropic import _usage

    return _usage(raw)


def usage_to_chat(raw: Any) -> JSON | None:
    """Anthropic `usage` in chat completion terms (cache reads and writes count as prompt)."""
    return _anthropic_usage(raw) if isinstance(raw, dict) else None


def _text(block: Any, where: str) -> str:
    if not (isinstance(block, dict) and block.get("type") == "text"
            and isinstance(block.get("text"), str)):
        raise _bad(f"`{where}` must be a text block.", where)
    return str(block["text"])


def _system(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_text(b, f"system[{i}]") for i, b in enumerate(value))
    raise _bad("`system` must be a string or an array of text blocks.", "system")


def _image(block: JSON, where: str) -> JSON:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64" and isinstance(
            source.get("data"), str) and isinstance(source.get("media_type"), str):
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif isinstance(source, dict) and source.get("type") == "url" and isinstance(
            source.get("url"), str):
        url = source["url"]
    else:
        raise _bad(f"`{where}.source` must be a base64 or url image source.", f"{where}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: JSON, where: str) -> JSON:
    tool_id = block.get("tool_use_id")
    if not isinstance(tool_id, str) or not tool_id:
        raise _bad(f"`{where}.tool_use_id` is required.", f"{where}.tool_use_id")
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(_text(b, f"{where}.content[{i}]") for i, b in enumerate(content))
    else:
        raise _bad(f"`{where}.content` must be a string or text blocks.", f"{where}.content")
    if block.get("is_error"):
        text = f"Error: {text}"  # chat tool messages have no error flag; the model reads it
    return {"role": "tool", "tool_call_id": tool_id, "content": text}


def _turn(message: Any, where: str) -> list[JSON]:
    """One Messages turn as chat messages (a user turn's tool results become tool messages,
    placed before the rest of the turn)."""
    if not isinstance(message, dict):
        raise _bad(f"`{where}` must be an object.", where)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise _bad(f"`{where}.role` must be user or assistant.", f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise _bad(f"`{where}.content` must be a string or an array of content blocks.",
                   f"{where}.content")
    tools: list[JSON] = []
    parts: list[JSON] = []
    calls: list[JSON] = []
    for i, block in enumerate(content):
        at = f"{where}.content[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, at)})
        elif kind == "image" and role == "user":
            parts.append(_image(block, at))
        elif kind == "tool_result" and role == "user":
            tools.append(_tool_result(block, at))
        elif kind == "tool_use" and role == "assistant":
            if not (isinstance(block.get("id"), str) and isinstance(block.get("name"), str)):
                raise _bad(f"`{at}` needs an `id` and a `name`.", at)
            calls.append({"id": block["id"], "type": "function", "function": {
                "name": block["name"],
                "arguments": orjson.dumps(block.get("input") or {}).decode()}})
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # the model's own notes from an earlier turn: nothing a chat model reads
        else:
            raise _bad(f"`{at}`: {role} content blocks of type {kind!r} cannot be translated "
                       "for this model.", f"{at}.type")
    out = tools
    if role == "assistant":
        text = "".join(p["text"] for p in parts)
        msg: JSON = {"role": "assistant", "content": text or None}
        if calls:
            msg["tool_calls"] = calls
        if text or calls:
            out.append(msg)
    elif parts:
        only_text = all(p["type"] == "text" for p in parts)
        out.append({"role": "user",
                    "content": "".join(p["text"] for p in parts) if only_text else parts})
    return out


def _tools(tools: Any) -> list[JSON]:
    if not isinstance(tools, list):
        raise _bad("`tools` must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _bad(f"`{where}`: only custom tools can be translated for this model "
                       f"(not {kind!r}).", f"{where}.type")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _bad(f"`{where}.name` is required.", f"{where}.name")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"`{where}.input_schema` must be an object.", f"{where}.input_schema")
        fn: JSON = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any, chat: JSON) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _bad("`tool_choice.type` must be auto, any, tool or none.", "tool_choice")
    if choice.get("disable_parallel_tool_use") and chat.get("tools"):
        chat["parallel_tool_calls"] = False


def to_chat(body: Mapping[str, Any]) -> JSON:
    """The chat body for a Messages request."""
    if not _ACCEPTED.issuperset(body):  # in C; the loop only to name the field
        name = next(name for name in body if name not in _ACCEPTED)
        raise _bad(f"`{name}` cannot be translated for this model.", name)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _bad("`max_tokens` is required and must be a positive integer.", "max_tokens")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _bad("`messages` must be a non-empty array.", "messages")
    messages: list[JSON] = []  # the system message, if any, then the turns
    if body.get("system") is not None:
        system = _system(body["system"])
        if system:
            messages.append({"role": "system", "content": system})
    system_only = len(messages)
    for i, message in enumerate(raw):
        messages.extend(_turn(message, f"messages[{i}]"))
    if len(messages) == system_only:
        raise _bad("`messages` holds no content.", "messages")
    chat: JSON = {"model": body.get("model"), "messages": messages, "max_tokens": max_tokens}
    for name in ("temperature", "top_p", "top_k", "service_tier", *_LANEWAY):
        if body.get(name) is not None:
            chat[name] = body[name]
    stops = body.get("stop_sequences")
    if stops is not None:
        if not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
            raise _bad("`stop_sequences` must be an array of strings.", "stop_sequences")
        if stops:
            chat["stop"] = stops
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], chat)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or set(metadata) - {"user_id"}:
            raise _bad("`metadata` takes only `user_id`.", "metadata")
        if isinstance(metadata.get("user_id"), str):
            chat["user"] = metadata["user_id"]
    thinking = body.get("thinking")
    if thinking is not None:
        kind = thinking.get("type") if isinstance(thinking, dict) else None
        if kind == "enabled" and isinstance(thinking.get("budget_tokens"), int):
            budget = thinking["budget_tokens"]
            chat["reasoning_effort"] = next((e for cap, e in _EFFORT if budget <= cap), "high")
        elif kind != "disabled":
            raise _bad("`thinking` must be enabled (with budget_tokens) or disabled.",
                       "thinking")
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


# ---------------------------------------------------------------- replies


def _usage(raw: Any) -> JSON:
    prompt, completion, _, cached, _ = chat_counts(raw)
    return {"input_tokens": max(prompt - cached, 0), "output_tokens": completion,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def _stop(finish: Any) -> str:
    return _STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def _input(arguments: Any) -> Any:
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def from_chat(chat: Mapping[str, Any], model: Any) -> JSON:
    """A `message` from a chat completion."""
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[JSON] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": str(call.get("id") or new_id()),
                        "name": str(fn.get("name") or ""), "input": _input(fn.get("arguments"))})
    return {"id": new_id(), "type": "message", "role": "assistant",
            "model": chat.get("model") or model, "content": content,
            "stop_reason": _stop(choice.get("finish_reason")), "stop_sequence": None,
            "usage": _usage(chat.get("usage"))}


class MessagesStream:
    """Chat chunks in, Anthropic stream events out (each a dict with `type`)."""

    def __init__(self, model: Any) -> None:
        self.id = new_id()
        self.model = model
        self.index = -1
        self.open: str | None = None  # "text", or the chat index of the open tool call
        self.tool_blocks: dict[int, int] = {}
        self.finish: Any = None
        self.usage: Any = None

    def start(self) -> list[JSON]:
        return [{"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}]

    def _close(self) -> list[JSON]:
        if self.open is None:
            return []
        self.open = None
        return [{"type": "content_block_stop", "index": self.index}]

    def feed(self, chunk: Mapping[str, Any]) -> list[JSON]:
        out: list[JSON] = []
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                if self.open != "text":
                    out.extend(self._close())
                    self.index += 1
                    self.open = "text"
                    out.append({"type": "content_block_start", "index": self.index,
                                "content_block": {"type": "text", "text": ""}})
                out.append({"type": "content_block_delta", "index": self.index,
                            "delta": {"type": "text_delta", "text": piece}})
            for call in delta.get("tool_calls") or ():
                out.extend(self._call(call))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _call(self, call: Any) -> list[JSON]:
        if not isinstance(call, dict):
            return []
        out: list[JSON] = []
        fn = call.get("function") or {}
        at = call.get("index", 0)
        key = f"tool{at}"
        if at not in self.tool_blocks:
            out.extend(self._close())
            self.index += 1
            self.tool_blocks[at] = self.index
            self.open = key
            out.append({"type": "content_block_start", "index": self.index, "content_block": {
                "type": "tool_use", "id": str(call.get("id") or new_id()),
                "name": str(fn.get("name") or ""), "input": {}}})
        piece = fn.get("arguments")
        if isinstance(piece, str) and piece:
            out.append({"type": "content_block_delta", "index": self.tool_blocks[at],
                        "delta": {"type": "input_json_delta", "partial_json": piece}})
        return out

    def end(self) -> list[JSON]:
        usage = _usage(self.usage)
        return [*self._close(),
                {"type": "message_delta",
                 "delta": {"stop_reason": _stop(self.finish), "stop_sequence": None},
                 "usage": usage},
                {"type": "message_stop"}]


def stream_meter() -> Callable[[JSON], JSON | None]:
    """Reads the usage of a native Messages stream: input counts come with `message_start`,
    the output count (running total) with `message_delta`."""
    raw: JSON = {}

    def read(event: JSON) -> JSON | None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
        elif kind == "message_delta":
            usage = event.get("usage")
        else:
            return None
        if isinstance(usage, dict):
            raw.update({k: v for k, v in usage.items() if isinstance(v, int)})
        return _anthropic_usage(raw)

    return read
