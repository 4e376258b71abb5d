"""What counting a chat conversation's prompt tokens costs, from freshly parsed JSON.

    python bench/token_counts.py

A 2,000-word system prompt and ten 100-word turns (about 3,000 tokens), counted as a request
would be: parsed from JSON (new string objects every time), then counted again as it was, and
with one new turn at the end (the usual next request of a chat client).
"""

from __future__ import annotations

import random
import sys
import timeit
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.tokens import counter_for

WORDS = ["the", "gateway", "routes", "each", "request", "to", "one", "of", "many",
         "upstream", "deployments", "and", "keeps", "every", "limit"]


def main() -> None:
    rng = random.Random(1)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    conversation = [{"role": "system", "content": text(2000)}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": text(100)} for i in range(10)]
    raw = orjson.dumps(conversation)
    counter = counter_for("gpt-4o")
    tokens = counter.messages(orjson.loads(raw))
    n = 200
    parse = timeit.timeit(lambda: orjson.loads(raw), number=n) / n * 1e6
    again = timeit.timeit(lambda: counter.messages(orjson.loads(raw)), number=n) / n * 1e6
    turns = iter([text(100) for _ in range(n)])
    new_turn = timeit.timeit(lambda: counter.messages(
        [*orjson.loads(raw), {"role": "user", "content": next(turns)}]), number=n) / n * 1e6
    print(f"conversation of {tokens} tokens: {again:.0f} µs to parse and count as it was, "
          f"{new_turn:.0f} µs with a new 100-word turn (the parse alone: {parse:.0f} µs)")


if __name__ == "__main__":
    main()
