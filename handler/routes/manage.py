"""What the key and team management routes share: the master-key gate, bodies, paging."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import Request

from handler.auth import principal_of
from handler.routes.inference import parse_body
from handler.streaming import json_response
from router.errors import BadRequest, PermissionDenied
from router.router import Router
from router.tenants.records import hash_key

__all__ = ["Manager", "json_response"]

_HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_PAGE_SIZE = 100


def key_hash_of(value: str) -> str:
    """A key named in a request: the key itself, or its hash (`token`, as /key/list shows)."""
    return value if _HASH.match(value) else hash_key(value)


class Manager:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.tenants = router.tenants

    async def require_master(self, request: Request) -> None:
        principal = principal_of(request)
        if principal.can_manage:
            return
        if principal.kind == "anonymous":
            raise PermissionDenied("Managing keys and teams needs a master key: set "
                                   "general_settings.master_key (or LANEWAY_MASTER_KEY).")
        raise PermissionDenied("Only the master key may manage keys and teams.")

    async def body(self, request: Request) -> dict[str, Any]:
        await self.require_master(request)
        return parse_body(await request.body())


def page_args(request: Request, default_size: int = 10) -> tuple[int, int]:
    page = _int_arg(request, "page", 1)
    size = _int_arg(request, "size", default_size)
    if page < 1:
        raise BadRequest("`page` must be 1 or more.", param="page")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise BadRequest(f"`size` must be between 1 and {MAX_PAGE_SIZE}.", param="size")
    return page, size


def _int_arg(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"`{name}` must be an integer.", param=name) from None


def paging(total: int, page: int, size: int) -> dict[str, int]:
    return {"total_count": total, "current_page": page,
            "total_pages": max(1, math.ceil(total / size))}


def string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v for v in value):
        raise BadRequest(f"`{name}` must be a non-empty list of strings.", param=name)
    return list(dict.fromkeys(value))
