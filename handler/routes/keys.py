"""Virtual key management, in LiteLLM's paths and field names (master key only).

A key's text is returned once, by /key/generate and /key/regenerate; everything else names a
key by `token` (its SHA-256) and shows `key_name` (`sk-...` and its last four characters).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.routes.manage import (
    Manager,
    json_response,
    key_hash_of,
    page_args,
    paging,
    string_list,
)
from router.errors import BadRequest, NotFound
from router.router import Router
from router.tenants.fields import GenerateKey, RegenerateKey, UpdateKey, key_changes, parse_fields
from router.tenants.records import KeyRecord, hash_key, new_key
from router.tenants.store import TenantConflict
from router.tenants.views import key_view

__all__ = ["add_key_routes"]


def _conflict(exc: TenantConflict) -> BadRequest:
    return BadRequest(str(exc), param=exc.field)


def add_key_routes(app: FastAPI, router: Router) -> None:
    manager = Manager(router)
    tenants = manager.tenants

    async def view(record: KeyRecord) -> dict[str, Any]:
        return key_view(record, await tenants.spend("key", record.key_hash))

    async def with_secret(record: KeyRecord, key: str) -> Response:
        return json_response({**await view(record), "key": key})

    async def team_must_exist(given: dict[str, Any]) -> None:
        team_id = given.get("team_id")
        if team_id is not None and await tenants.get_team(team_id) is None:
            raise BadRequest(f"`team_id`: no team '{team_id}'; create it with /team/new first.",
                             param="team_id")

    async def generate(request: Request) -> Response:
        body = await manager.body(request)
        given = parse_fields(body, GenerateKey)
        await team_must_exist(given)
        # A key the caller chose is echoed once, like a generated one; neither is kept.
        key = body["key"] if given.pop("key", None) is not None else new_key()
        try:
            record = await tenants.create_key(
                key_changes(KeyRecord(hash_key(key), key[-4:]), given))
        except TenantConflict as exc:
            raise _conflict(exc) from None
        return await with_secret(record, key)

    async def existing(key_text: str) -> KeyRecord:
        record = await tenants.get_key(key_hash_of(key_text))
        if record is None:
            raise NotFound("No such key.", param="key")
        return record

    async def update(request: Request) -> Response:
        given = parse_fields(await manager.body(request), UpdateKey, required=("key",))
        await team_must_exist(given)
        key_hash = key_hash_of(given.pop("key"))
        try:
            record = await tenants.update_key(key_hash, lambda r: key_changes(r, given))
        except TenantConflict as exc:
            raise _conflict(exc) from None
        if record is None:
            raise NotFound("No such key.", param="key")
        return json_response(await view(record))

    async def set_blocked(request: Request, blocked: bool) -> Response:
        given = parse_fields(await manager.body(request), UpdateKey, required=("key",))
        if set(given) != {"key"}:
            extra = sorted(set(given) - {"key"})[0]
            raise BadRequest(f"Unknown field `{extra}`.", param=extra)
        record = await tenants.update_key(
            key_hash_of(given["key"]), lambda r: key_changes(r, {"blocked": blocked}))
        if record is None:
            raise NotFound("No such key.", param="key")
        return json_response(await view(record))

    async def block(request: Request) -> Response:
        return await set_blocked(request, True)

    async def unblock(request: Request) -> Response:
        return await set_blocked(request, False)

    async def delete(request: Request) -> Response:
        body = await manager.body(request)
        unknown = sorted(set(body) - {"keys", "key_aliases"})
        if unknown:
            raise BadRequest(f"Unknown field `{unknown[0]}`.", param=unknown[0])
        if ("keys" in body) == ("key_aliases" in body):
            raise BadRequest("Send either `keys` or `key_aliases`.", param="keys")
        found: list[KeyRecord] = []
        if "keys" in body:
            for text in string_list(body, "keys"):
                found.append(await existing(text))
        else:
            for alias in string_list(body, "key_aliases"):
                record = await tenants.get_key_by_alias(alias)
                if record is None:
                    raise NotFound(f"No key has the alias '{alias}'.", param="key_aliases")
                found.append(record)
        for record in found:
            await tenants.delete_key(record.key_hash)
        return json_response({"deleted_keys": [r.key_hash for r in found]})

    async def regenerate(request: Request) -> Response:
        body = await manager.body(request)
        in_path = request.path_params.get("key")
        if in_path is not None:
            body = {**body, "key": in_path}
        given = parse_fields(body, RegenerateKey, required=("key",))
        await team_must_exist(given)
        old = await existing(given.pop("key"))
        key = body["new_key"] if given.pop("new_key", None) is not None else new_key()
        try:
            if given:  # first, so that a refused change leaves the old key as it was
                await tenants.update_key(old.key_hash, lambda r: key_changes(r, given))
            record = await tenants.replace_key(old.key_hash, hash_key(key), key[-4:])
        except TenantConflict as exc:
            raise _conflict(exc) from None
        if record is None:
            raise NotFound("No such key.", param="key")
        return await with_secret(record, key)

    async def info(request: Request) -> Response:
        await manager.require_master(request)
        text = request.query_params.get("key")
        if not text:
            raise BadRequest("`key` is required (the key, or its token).", param="key")
        record = await existing(text)
        return json_response({"key": record.key_hash, "info": await view(record)})

    async def listing(request: Request) -> Response:
        await manager.require_master(request)
        page, size = page_args(request)
        full = request.query_params.get("return_full_object", "").lower() in ("1", "true")
        alias = request.query_params.get("key_alias")
        if alias:
            one = await tenants.get_key_by_alias(alias)
            records, total = ([one], 1) if one is not None else ([], 0)
        else:
            result = await tenants.list_keys(team_id=request.query_params.get("team_id") or None,
                                             page=page, size=size)
            records, total = result.items, result.total
        keys = [await view(r) for r in records] if full else [r.key_hash for r in records]
        return json_response({"keys": keys, **paging(total, page, size)})

    post = {"/key/generate": generate, "/key/update": update, "/key/delete": delete,
            "/key/regenerate": regenerate, "/key/{key}/regenerate": regenerate,
            "/key/block": block, "/key/unblock": unblock}
    for path, fn in post.items():
        app.add_api_route(path, fn, methods=["POST"])
    app.add_api_route("/key/info", info, methods=["GET"])
    app.add_api_route("/key/list", listing, methods=["GET"])
