"""Prompt templates render exactly what the config says, and a readable default otherwise."""

from __future__ import annotations

from router.prompts import render, template_for

MESSAGES = [{"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
            {"role": "assistant", "content": "A1"},
            {"role": "user", "content": [{"type": "text", "text": "U2"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]}]


def test_no_template_keys_means_no_template():
    assert template_for({"model": "x", "temperature": 0.1}) is None


def test_configured_template_is_applied_verbatim():
    template = template_for({
        "initial_prompt_value": "\n",
        "roles": {"system": {"pre_message": "<|im_start|>system\n", "post_message": "<|im_end|>"},
                  "user": {"pre_message": "<|im_start|>user\n", "post_message": "<|im_end|>"},
                  "assistant": {"pre_message": "<|im_start|>assistant\n",
                                "post_message": "<|im_end|>"}},
        "final_prompt_value": "\n<|im_start|>assistant\n",
        "bos_token": "<s>", "eos_token": "</s>"})
    assert render(MESSAGES, template) == (
        "<s>\n<|im_start|>system\nS<|im_end|><|im_start|>user\nU1<|im_end|>"
        "<|im_start|>assistant\nA1<|im_end|></s><s><|im_start|>user\nU2<|im_end|>"
        "\n<|im_start|>assistant\n")


def test_roles_without_wrapping_pass_content_through():
    template = template_for({"final_prompt_value": "!"})
    assert render([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}],
                  template) == "ab!"


def test_default_template_is_a_labelled_transcript():
    assert render(MESSAGES[:3]) == (
        "### System:\nS\n\n### User:\nU1\n\n### Assistant:\nA1\n\n### Assistant:\n")
