"""The event-stream decoder agrees with botocore's on the frames the fake Bedrock sends."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import orjson
import pytest

from router.providers.eventstream import EventStreamDecoder, EventStreamError
from tests.support.fake_bedrock import encode_frame, event, exception
from tests.support.procs import REPO

FRAMES = [event("messageStart", {"role": "assistant"}),
          event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "héllo"}}),
          exception("throttlingException", "slow down"),
          encode_frame({":event-type": "metadata"}, b"")]


def test_matches_botocore_and_survives_any_split():
    from botocore.eventstream import EventStreamBuffer

    blob = b"".join(FRAMES)
    reference = EventStreamBuffer()
    reference.add_data(blob)
    expected = [(dict(m.headers), m.payload) for m in reference]
    for step in (1, 7, len(blob)):
        decoder = EventStreamDecoder()
        frames = [f for i in range(0, len(blob), step) for f in decoder.feed(blob[i:i + step])]
        assert [(f.headers, f.payload) for f in frames] == expected
        assert decoder.pending == 0
    first = EventStreamDecoder().feed(FRAMES[1])[0]
    assert first.event_type == "contentBlockDelta" and first.message_type == "event"
    assert orjson.loads(first.payload)["delta"]["text"] == "héllo"
    error = EventStreamDecoder().feed(FRAMES[2])[0]
    assert (error.message_type, error.event_type) == ("exception", "throttlingException")


def test_corruption_is_detected():
    broken = bytearray(FRAMES[1])
    broken[-6] ^= 0xFF
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(bytes(broken))
    with pytest.raises(EventStreamError):
        EventStreamDecoder().feed(b"\x00\x00\x00\x05" + FRAMES[0][4:])


def test_no_provider_sdk_is_imported_until_bedrock_is_used():
    script = textwrap.dedent("""
        import sys
        from router.providers.catalog import get_provider
        for name in ("openai", "azure", "anthropic", "ollama", "huggingface", "mock", "groq"):
            get_provider(name)
        import router.providers.bedrock
        assert "botocore" not in sys.modules and "boto3" not in sys.modules, "eager botocore"
        assert "tokenizers" not in sys.modules, "eager tokenizers"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
