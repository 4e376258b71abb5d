"""OpenAI's Responses API ⇄ chat completions.

`to_chat` maps a Responses request (plus the stored messages of a `previous_response_id`) to a
chat body; `from_chat` maps a chat completion to a `response` object; `ResponsesStream` turns
chat chunks into the Responses stream events (`response.created`, `response.output_item.added`,
`response.output_text.delta`, `response.function_call_arguments.delta`, ...,
`response.completed`). A field or item that chat completions cannot carry is a 400 naming it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from router.errors import BadRequest, RequestError
from router.translate.usage import chat_counts

JSON = dict[str, Any]

__all__ = ["ResponsesStream", "assistant_message", "from_chat", "new_id", "stream_meter", "to_chat",
           "usage_from_chat", "usage_to_chat"]

_LANEWAY = ("priority", "mock_response", "timeout", "num_retries")
# Fields that change nothing a translated upstream does, accepted so that clients sending them
# (the Codex CLI sends `include` and `store`) work: `include` asks for extra output data that a
# chat completion does not have; `store`/`previous_response_id` are laneway's own business.
_ACCEPTED = frozenset({
    "model", "input", "instructions", "stream", "tools", "tool_choice", "text",
    "max_output_tokens", "temperature", "top_p", "reasoning", "metadata", "parallel_tool_calls",
    "store", "previous_response_id", "include", "user", "truncation", "service_tier",
    "prompt_cache_key", "safety_identifier", "top_logprobs", "stream_options", *_LANEWAY,
})
_PASSED = ("temperature", "top_p", "parallel_tool_calls", "user", "service_tier",
           "prompt_cache_key", "safety_identifier", *_LANEWAY)
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str = "resp") -> str:
    # 128 random bits in hex, as a uuid4's hex would be, at a quarter of uuid4's cost.
    return f"{prefix}_{os.urandom(16).hex()}"


def _bad(message: str, param: str) -> BadRequest:
    return BadRequest(message, param=param)


def _text_of(value: Any, where: str) -> str:
    """A string, or the text of an array of text parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        out = []
        for i, part in enumerate(value):
            if not (isinstance(part, dict) and part.get("type") in (
                    "input_text", "output_text", "text")
                    and isinstance(part.get("text"), str)):
                raise _bad(f"`{where}[{i}]` must be a text part.", f"{where}[{i}]")
            out.append(part["text"])
        return "".join(out)
    raise _bad(f"`{where}` must be a string or an array of text parts.", where)


def _user_parts(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(f"`{where}` must be a string or an array of content parts.", where)
    parts: list[JSON] = []
    for i, part in enumerate(content):
        at = f"{where}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise _bad(f"`{at}`: only images given by `image_url` can be translated "
                           "(not `file_id`).", at)
            image: JSON = {"url": url}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise _bad(f"`{at}`: content parts of type {kind!r} cannot be translated for "
                       "this model.", at)
    return parts


def _arguments(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"`{where}.arguments` must be a string of JSON.", f"{where}.arguments")
    return value


def input_messages(value: Any) -> list[JSON]:
    """The chat messages of a Responses `input` (a string or an array of items)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise _bad("`input` must be a string or a non-empty array of input items.", "input")
    out: list[JSON] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(f"`{where}` must be an object.", where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("user",):
                out.append({"role": "user", "content": _user_parts(content, f"{where}.content")})
            elif role in ("system", "developer"):
                out.append({"role": role, "content": _text_of(content, f"{where}.content")})
            elif role == "assistant":
                out.append({"role": "assistant",
                            "content": _assistant_text(content, f"{where}.content")})
            else:
                raise _bad(f"`{where}.role` must be user, assistant, system or developer.",
                           f"{where}.role")
        elif kind == "function_call":
            call_id, name = item.get("call_id"), item.get("name")
            if not (isinstance(call_id, str) and call_id and isinstance(name, str) and name):
                raise _bad(f"`{where}` needs a `call_id` and a `name`.", where)
            call = {"id": call_id, "type": "function",
                    "function": {"name": name, "arguments": _arguments(
                        item.get("arguments"), where)}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            elif last is not None and last["role"] == "assistant" and not last.get("content"):
                last["tool_calls"] = [call]
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _bad(f"`{where}.call_id` is required.", f"{where}.call_id")
            out.append({"role": "tool", "tool_call_id": call_id,
                        "content": _text_of(item.get("output"), f"{where}.output")})
        elif kind == "reasoning":
            continue  # the model's own notes from an earlier turn: nothing a chat model reads
        else:
            raise _bad(f"`{where}`: input items of type {kind!r} cannot be translated for this "
                       "model.", f"{where}.type")
    return out


def _assistant_text(content: Any, where: str) -> str:
    if isinstance(content, list):
        out = []
        for i, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "refusal" and isinstance(
                    part.get("refusal"), str):
                out.append(part["refusal"])
            else:
                out.append(_text_of([part], f"{where}[{i}]"))
        return "".join(out)
    return _text_of(content, where)


def _tools(tools: Any) -> list[JSON]:
    if not isinstance(tools, list):
        raise _bad("`tools` must be an array.", "tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _bad(f"`{where}`: only function tools can be translated for this model "
                       f"(not {kind!r}).", f"{where}.type")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"`{where}.name` is required.", f"{where}.name")
        fn: JSON = {"name": name}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                fn[key] = tool[key]
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            raise _bad(f"`{where}.parameters` must be an object.", f"{where}.parameters")
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(
            choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _bad("`tool_choice` must be auto, none, required or a function.", "tool_choice")


def _format(text: Any) -> JSON | None:
    if not isinstance(text, dict):
        raise _bad("`text` must be an object.", "text")
    extra = set(text) - {"format", "verbosity"}
    if extra:
        raise _bad(f"`text.{sorted(extra)[0]}` cannot be translated.",
                   f"text.{sorted(extra)[0]}")
    fmt = text.get("format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise _bad("`text.format` of type json_schema needs a `name` and a `schema`.",
                       "text.format")
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description")
                  if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise _bad("`text.format.type` must be text, json_object or json_schema.", "text.format")


def to_chat(body: Mapping[str, Any], history: list[JSON] | None = None) -> JSON:
    """The chat body for a Responses request (`history`: the stored conversation so far)."""
    if not _ACCEPTED.issuperset(body):  # in C; the loop only to name the field
        name = next(name for name in body if name not in _ACCEPTED)
        raise _bad(f"`{name}` cannot be translated for this model.", name)
    messages: list[JSON] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _bad("`instructions` must be a string.", "instructions")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    messages.extend(history or ())
    messages.extend(input_messages(body.get("input")))
    chat: JSON = {"model": body.get("model"), "messages": messages}
    for name in _PASSED:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    if body.get("text") is not None:
        fmt = _format(body["text"])
        if fmt is not None:
            chat["response_format"] = fmt
        if body["text"].get("verbosity") is not None:
            chat["verbosity"] = body["text"]["verbosity"]
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _bad("`reasoning` must be an object.", "reasoning")
        # `summary` asks how much of the reasoning to show: chat completions show none.
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    if body.get("metadata") is not None:
        chat["metadata"] = body["metadata"]
    if body.get("truncation") not in (None, "disabled"):
        raise _bad("`truncation: auto` cannot be translated for this model.", "truncation")
    if body.get("top_logprobs"):
        chat["logprobs"], chat["top_logprobs"] = True, body["top_logprobs"]
    return chat


# ---------------------------------------------------------------- replies


def usage_from_chat(raw: Any) -> JSON:
    prompt, completion, total, cached, reasoning = chat_counts(raw)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": total}


def usage_to_chat(raw: Any) -> JSON | None:
    """A Responses `usage` in chat completion terms (what the engine reconciles)."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("input_tokens") or 0, raw.get("output_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": raw.get("total_tokens") or prompt + completion}


_ENVELOPE: JSON = {
    "id": None, "object": "response", "created_at": 0, "status": "in_progress",
    "background": False, "error": None, "incomplete_details": None, "instructions": None,
    "max_output_tokens": None, "model": None, "output": None, "parallel_tool_calls": True,
    "previous_response_id": None, "reasoning": None, "store": True, "temperature": None,
    "text": None, "tool_choice": "auto", "tools": None, "top_p": None, "truncation": "disabled",
    "usage": None, "user": None, "metadata": None,
}
"""A response object's fields in OpenAI's order, with the values a request that names none of
them gets (the mutable ones are made fresh per response)."""
_ECHOED = frozenset({"instructions", "max_output_tokens", "parallel_tool_calls",
                     "previous_response_id", "temperature", "tool_choice", "top_p", "user"})
"""Request fields a response repeats as they were sent."""
_SHAPED = frozenset({"reasoning", "store", "text", "tools", "truncation", "metadata"})
"""Request fields a response repeats in a shape of its own (defaults, a part of the field)."""


def _envelope(request: Mapping[str, Any], response_id: str, created: int, model: Any) -> JSON:
    response = {**_ENVELOPE, "id": response_id, "created_at": created, "model": model,
                "output": [], "reasoning": {"effort": None, "summary": None},
                "text": {"format": {"type": "text"}}, "tools": [], "metadata": {}}
    # Most requests name two or three fields: look at those, not at every field a response has.
    for name in _ECHOED.intersection(request):
        response[name] = request[name]
    if _SHAPED.isdisjoint(request):
        return response
    reasoning, text = request.get("reasoning"), request.get("text")
    if isinstance(reasoning, dict):
        response["reasoning"]["effort"] = reasoning.get("effort")
    if isinstance(text, dict) and text.get("format"):
        response["text"]["format"] = text["format"]
    response["store"] = request.get("store", True) is not False
    response["tools"] = request.get("tools") or []
    response["truncation"] = request.get("truncation") or "disabled"
    response["metadata"] = request.get("metadata") or {}
    return response


def _message_item(item_id: str, text: str, refusal: str | None, status: str) -> JSON:
    content: list[JSON] = []
    if text or not refusal:
        content.append({"type": "output_text", "text": text, "annotations": [],
                        "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": content}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JSON:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def _finish(response: JSON, finish: Any) -> None:
    reason = _INCOMPLETE.get(finish) if isinstance(finish, str) else None
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None


def from_chat(chat: Mapping[str, Any], request: Mapping[str, Any], response_id: str) -> JSON:
    """A `response` object from a chat completion."""
    created = chat.get("created")
    if not (type(created) is int and 0 < created < 2**53):  # an upstream's, any shape
        created = int(time.time())
    model = chat.get("model")  # a model's name is a string; anything else is not copied
    response = _envelope(request, response_id, created,
                         model if model and type(model) is str else request.get("model"))
    choices = chat.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    text, refusal = message.get("content"), message.get("refusal")
    if text or refusal or not message.get("tool_calls"):
        response["output"].append(_message_item(
            new_id("msg"), text if isinstance(text, str) else "",
            refusal if isinstance(refusal, str) else None, "completed"))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        response["output"].append(_call_item(
            new_id("fc"), str(call.get("id") or new_id("call")), str(fn.get("name") or ""),
            str(fn["arguments"]) if isinstance(fn.get("arguments"), str) else "{}",
            "completed"))
    _finish(response, choice.get("finish_reason"))
    response["usage"] = usage_from_chat(chat.get("usage"))
    return response


def assistant_message(response: Mapping[str, Any]) -> JSON:
    """The chat message that a response's output is, to continue the conversation with."""
    text: list[str] = []
    calls: list[JSON] = []
    for item in response.get("output") or ():
        if item.get("type") == "message":
            for part in item.get("content") or ():
                text.append(part.get("text") or part.get("refusal") or "")
        elif item.get("type") == "function_call":
            calls.append({"id": item["call_id"], "type": "function",
                          "function": {"name": item["name"], "arguments": item["arguments"]}})
    out: JSON = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        out["tool_calls"] = calls
    return out


class ResponsesStream:
    """Chat chunks in, Responses stream events out (each a dict with `type`)."""

    def __init__(self, request: Mapping[str, Any], response_id: str) -> None:
        self.response = _envelope(request, response_id, int(time.time()), request.get("model"))
        self.seq = 0
        self.message: JSON | None = None  # the open message item, while text arrives
        self.text: list[str] = []
        self.calls: dict[int, JSON] = {}  # chat tool call index → open function_call item
        self.finish: Any = None
        self.usage: Any = None
        self._ended: list[JSON] | Exception | None = None

    def _event(self, kind: str, **fields: Any) -> JSON:
        self.seq += 1
        return {"type": kind, "sequence_number": self.seq - 1, **fields}

    def start(self) -> list[JSON]:
        snapshot = {**self.response, "output": []}
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=snapshot)]

    def feed(self, chunk: Mapping[str, Any]) -> list[JSON]:
        out: list[JSON] = []
        model = chunk.get("model")
        if model and type(model) is str and self.response["model"] != model:
            self.response["model"] = model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            piece = delta.get("content")
            if isinstance(piece, str) and piece:
                message = self.message or self._open_message(out)
                self.text.append(piece)
                # Once per chunk: built here, not through `_event` (same keys, same order).
                self.seq += 1
                out.append({"type": "response.output_text.delta",
                            "sequence_number": self.seq - 1, "item_id": message["id"],
                            "output_index": message["output_index"], "content_index": 0,
                            "delta": piece, "logprobs": []})
            for call in delta.get("tool_calls") or ():
                out.extend(self._call(call))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _index(self) -> int:
        return len(self.response["output"])

    def _open_message(self, out: list[JSON]) -> JSON:
        """The message item text goes into, opened (its two events added to `out`)."""
        message = _message_item(new_id("msg"), "", None, "in_progress")
        message["content"] = []
        message["output_index"] = self._index()
        self.response["output"].append(message)
        self.message = message
        out.append(self._event("response.output_item.added",
                               output_index=message["output_index"],
                               item={k: v for k, v in message.items() if k != "output_index"}))
        out.append(self._event("response.content_part.added", item_id=message["id"],
                               output_index=message["output_index"], content_index=0,
                               part={"type": "output_text", "text": "", "annotations": [],
                                     "logprobs": []}))
        return message

    def _close_message(self) -> list[JSON]:
        item = self.message
        if item is None:
            return []
        self.message = None
        index = item.pop("output_index")
        text = "".join(self.text)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item.update(status="completed", content=[part])
        return [self._event("response.output_text.done", item_id=item["id"],
                            output_index=index, content_index=0, text=text, logprobs=[]),
                self._event("response.content_part.done", item_id=item["id"],
                            output_index=index, content_index=0, part=part),
                self._event("response.output_item.done", output_index=index, item=dict(item))]

    def _call(self, call: Any) -> list[JSON]:
        if not isinstance(call, dict):
            return []
        fn = call.get("function") or {}
        index = call.get("index", 0)
        out: list[JSON] = []
        item = self.calls.get(index)
        if item is None:
            out.extend(self._close_message())
            item = _call_item(new_id("fc"), str(call.get("id") or new_id("call")),
                              str(fn.get("name") or ""), "", "in_progress")
            item["output_index"] = self._index()
            self.calls[index] = item
            self.response["output"].append(item)
            out.append(self._event("response.output_item.added",
                                   output_index=item["output_index"],
                                   item={k: v for k, v in item.items() if k != "output_index"}))
        piece = fn.get("arguments")
        if isinstance(piece, str) and piece:
            item["arguments"] += piece
            out.append(self._event("response.function_call_arguments.delta",
                                   item_id=item["id"], output_index=item["output_index"],
                                   delta=piece))
        return out

    def _close_calls(self) -> list[JSON]:
        out: list[JSON] = []
        for item in self.calls.values():
            index = item.pop("output_index")
            item["status"] = "completed"
            out.append(self._event("response.function_call_arguments.done", item_id=item["id"],
                                   output_index=index, arguments=item["arguments"]))
            out.append(self._event("response.output_item.done", output_index=index,
                                   item=dict(item)))
        self.calls = {}
        return out

    def end(self) -> list[JSON]:
        """The stream of chunks ended: close the open items, then `response.completed` (or
        `response.incomplete` when the output was cut short). Once: a second call answers
        (or raises) as the first did (the store ends the stream before the route does)."""
        ended = self._ended
        if ended is None:
            try:
                ended = self._end()
            except Exception as exc:
                ended = exc
            self._ended = ended
        if isinstance(ended, Exception):
            raise ended
        return ended

    def _end(self) -> list[JSON]:
        out = self._close_message() + self._close_calls()
        _finish(self.response, self.finish)
        self.response["usage"] = usage_from_chat(self.usage)
        kind = ("response.completed" if self.response["status"] == "completed"
                else "response.incomplete")
        out.append(self._event(kind, response=self.response))
        return out

    def fail(self, exc: RequestError) -> list[JSON]:
        """The stream broke after its first event: an `error` event, then `response.failed`."""
        code = exc.code if exc.code is not None else str(exc.status)
        self.response.update(status="failed", error={"code": code, "message": exc.message})
        for item in self.response["output"]:
            item.pop("output_index", None)
        return [self._event("error", code=code, message=exc.message, param=exc.param),
                self._event("response.failed", response=self.response)]


def stream_meter() -> Callable[[JSON], JSON | None]:
    """Reads the usage of a native Responses stream (it comes with the final event)."""
    def read(event: JSON) -> JSON | None:
        if event.get("type") in ("response.completed", "response.incomplete",
                                 "response.failed"):
            response = event.get("response")
            return usage_to_chat(response.get("usage") if isinstance(response, dict) else None)
        return None

    return read
