"""Custom prompt templates: chat messages → one prompt string for raw-prompt endpoints.

A deployment's `litellm_params` may carry a template (the LiteLLM keys):

    initial_prompt_value: "<s>"          # once, at the start (after bos_token)
    roles:                               # wrapped around each message, per role
      system:    {pre_message: "[INST] <<SYS>>\\n", post_message: "\\n<</SYS>>\\n"}
      user:      {pre_message: "", post_message: " [/INST]"}
      assistant: {pre_message: " ", post_message: " "}
    final_prompt_value: ""               # once, at the end (where the model continues)
    bos_token: "<s>"                     # opens the prompt and every turn after an eos
    eos_token: "</s>"                    # closes every assistant message

The prompt is exactly: bos + initial + for each message (pre + content + post, then eos after
an assistant message, and bos again before the next message) + final. Nothing else is added.

Raw-prompt endpoints (TGI `/generate`, Ollama `/api/generate`, Bedrock InvokeModel text
models) are used for chat only when a deployment configures a template; without one, chat goes
to the provider's chat endpoint, which applies the model's own template — the sensible default.
`DEFAULT_TEMPLATE` is what `render` uses when asked to flatten messages without a template.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_TEMPLATE", "TEMPLATE_KEYS", "PromptTemplate", "message_text", "render",
           "template_for"]

TEMPLATE_KEYS = ("initial_prompt_value", "roles", "final_prompt_value", "bos_token", "eos_token")


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    roles: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    initial_prompt_value: str = ""
    final_prompt_value: str = ""
    bos_token: str = ""
    eos_token: str = ""


# A plain, widely understood transcript for instruction-tuned models.
DEFAULT_TEMPLATE = PromptTemplate(
    roles={
        "system": {"pre_message": "### System:\n", "post_message": "\n\n"},
        "user": {"pre_message": "### User:\n", "post_message": "\n\n"},
        "assistant": {"pre_message": "### Assistant:\n", "post_message": "\n\n"},
        "tool": {"pre_message": "### Tool result:\n", "post_message": "\n\n"},
    },
    final_prompt_value="### Assistant:\n",
)


def template_for(params: Mapping[str, Any]) -> PromptTemplate | None:
    """The deployment's custom template, or None when its params configure none."""
    if not any(params.get(key) is not None for key in TEMPLATE_KEYS):
        return None
    roles = params.get("roles") or {}
    return PromptTemplate(
        roles={str(role): {k: str(v) for k, v in (spec or {}).items()}
               for role, spec in roles.items()},
        initial_prompt_value=str(params.get("initial_prompt_value") or ""),
        final_prompt_value=str(params.get("final_prompt_value") or ""),
        bos_token=str(params.get("bos_token") or ""),
        eos_token=str(params.get("eos_token") or ""),
    )


def message_text(content: Any) -> str:
    """The text of a message's content (a string, or a list of parts of which text counts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content
                   if isinstance(part, Mapping) and part.get("type") == "text")


def render(messages: list[Mapping[str, Any]], template: PromptTemplate | None = None) -> str:
    """One prompt string from chat messages, exactly as the template says."""
    t = template or DEFAULT_TEMPLATE
    out = [t.bos_token, t.initial_prompt_value]
    after_eos = False
    for message in messages:
        role = str(message.get("role", "user"))
        wrap = t.roles.get(role, {})
        if after_eos:
            out.append(t.bos_token)
            after_eos = False
        out.append(wrap.get("pre_message", ""))
        out.append(message_text(message.get("content")))
        out.append(wrap.get("post_message", ""))
        if role == "assistant" and t.eos_token:
            out.append(t.eos_token)
            after_eos = True
    out.append(t.final_prompt_value)
    return "".join(out)
