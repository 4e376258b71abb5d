"""Stored Responses conversations (`store`, `previous_response_id`) for translated providers.

A stored response holds the `response` object a client got and the conversation so far as
chat messages (without `instructions`, which OpenAI does not carry over to a follow-up). It is
kept under its id and its owner (`owner_of`), in the state backend's key-value store with a
TTL, so a follow-up may go to any instance and another key never sees it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson

from router.state.base import Kept
from router.state.keys import stored_response
from router.state.kv import KeyValue
from router.tenants.records import Principal

log = logging.getLogger("laneway.responses")

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_TTL", "ResponseStore", "Stored", "owner_of"]

DEFAULT_TTL = 24 * 3600.0
"""Seconds a stored conversation lasts (general_settings.response_store_ttl)."""
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""The largest conversation stored (general_settings.response_store_max_bytes): room for a
request of the largest size accepted (10 MiB) and its reply. Each follow-up stores the whole
conversation again, so without a bound a chain of follow-ups would grow the shared store by
the square of its length."""
_MAX_ID = 200


def owner_of(principal: Principal) -> str:
    """Whose a stored response is: a virtual key's hash, else "master" or "anonymous"."""
    return principal.key.key_hash if principal.key is not None else principal.kind


@dataclass(frozen=True, slots=True)
class Stored:
    response: dict[str, Any]
    messages: list[dict[str, Any]]


class ResponseStore:
    owner_of = staticmethod(owner_of)  # at hand wherever the store is (no import per request)

    def __init__(self, kv: KeyValue, ttl: float = DEFAULT_TTL,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.kv = kv
        self.ttl = ttl
        self.max_bytes = max_bytes

    def kept(self, owner: str, response: dict[str, Any], messages: list[dict[str, Any]],
             encoded: bytes | None = None) -> Kept | None:
        """`response` and the conversation as a value to keep (with a release, or by `save`),
        or None when it is larger than `max_bytes` (it is not stored: a follow-up to it is a
        404). `encoded`: the response as JSON already (the bytes the client gets), so that it
        is not encoded twice."""
        if encoded is None:
            value = orjson.dumps({"response": response, "messages": messages})
        else:
            value = b'{"response":' + encoded + b',"messages":' + orjson.dumps(messages) + b"}"
        if len(value) > self.max_bytes:
            log.warning("response %s not stored: its conversation is %d bytes, over "
                        "response_store_max_bytes (%d)", response["id"], len(value),
                        self.max_bytes)
            return None
        return Kept(stored_response(response["id"], owner), value, max(1, round(self.ttl * 1000)))

    async def save(self, owner: str, response: dict[str, Any], messages: list[dict[str, Any]],
                   encoded: bytes | None = None) -> bool:
        """Keep `response` and the conversation in a write of its own; False when it is too
        large to keep."""
        kept = self.kept(owner, response, messages, encoded)
        if kept is None:
            return False
        await self.put(kept)
        return True

    async def put(self, kept: Kept) -> None:
        await self.kv.put(kept.key, kept.value, kept.ttl_ms / 1000)

    async def load(self, owner: str, response_id: str) -> Stored | None:
        if not response_id or len(response_id) > _MAX_ID:
            return None
        raw = await self.kv.get(stored_response(response_id, owner))
        if raw is None:
            return None
        data = orjson.loads(raw)
        return Stored(data["response"], data["messages"])

    async def delete(self, owner: str, response_id: str) -> bool:
        if not response_id or len(response_id) > _MAX_ID:
            return False
        return await self.kv.delete(stored_response(response_id, owner))
