"""Team management, in LiteLLM's paths and field names (master key only)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.routes.manage import Manager, json_response, string_list
from router.errors import BadRequest, NotFound
from router.router import Router
from router.tenants.fields import NewTeam, UpdateTeam, parse_fields, team_changes
from router.tenants.records import TeamRecord
from router.tenants.store import TenantConflict
from router.tenants.views import key_view, team_view

__all__ = ["add_team_routes"]

_LIST_PAGE = 100


def add_team_routes(app: FastAPI, router: Router) -> None:
    manager = Manager(router)
    tenants = manager.tenants

    async def view(record: TeamRecord) -> dict[str, Any]:
        return team_view(record, await tenants.spend("team", record.team_id))

    async def new(request: Request) -> Response:
        given = parse_fields(await manager.body(request), NewTeam)
        team_id = given.pop("team_id", None) or str(uuid.uuid4())
        try:
            record = await tenants.create_team(team_changes(TeamRecord(team_id), given))
        except TenantConflict as exc:
            raise BadRequest(str(exc), param=exc.field) from None
        return json_response(await view(record))

    async def update(request: Request) -> Response:
        given = parse_fields(await manager.body(request), UpdateTeam, required=("team_id",))
        team_id = given.pop("team_id")
        record = await tenants.update_team(team_id, lambda t: team_changes(t, given))
        if record is None:
            raise NotFound(f"No team '{team_id}'.", param="team_id")
        return json_response({"team_id": team_id, "data": await view(record)})

    async def delete(request: Request) -> Response:
        body = await manager.body(request)
        unknown = sorted(set(body) - {"team_ids"})
        if unknown:
            raise BadRequest(f"Unknown field `{unknown[0]}`.", param=unknown[0])
        team_ids = string_list(body, "team_ids")
        for team_id in team_ids:  # all or nothing, as far as a missing team goes
            if await tenants.get_team(team_id) is None:
                raise NotFound(f"No team '{team_id}'.", param="team_ids")
        for team_id in team_ids:
            await tenants.delete_team(team_id)
        return json_response({"deleted_teams": team_ids})

    async def info(request: Request) -> Response:
        await manager.require_master(request)
        team_id = request.query_params.get("team_id")
        if not team_id:
            raise BadRequest("`team_id` is required.", param="team_id")
        record = await tenants.get_team(team_id)
        if record is None:
            raise NotFound(f"No team '{team_id}'.", param="team_id")
        keys = (await tenants.list_keys(team_id=team_id, size=_LIST_PAGE)).items
        return json_response({
            "team_id": team_id,
            "team_info": await view(record),
            "keys": [key_view(k, await tenants.spend("key", k.key_hash))
                     for k in keys],
        })

    async def listing(request: Request) -> Response:
        await manager.require_master(request)
        teams: list[dict[str, Any]] = []
        page = 1
        while True:  # LiteLLM answers with every team; teams are few
            result = await tenants.list_teams(page=page, size=_LIST_PAGE)
            teams += [await view(t) for t in result.items]
            if page * _LIST_PAGE >= result.total or not result.items:
                break
            page += 1
        return json_response(teams)

    for path, fn in {"/team/new": new, "/team/update": update, "/team/delete": delete}.items():
        app.add_api_route(path, fn, methods=["POST"])
    app.add_api_route("/team/info", info, methods=["GET"])
    app.add_api_route("/team/list", listing, methods=["GET"])
