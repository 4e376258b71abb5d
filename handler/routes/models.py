"""`GET /v1/models/{model}`: one model as OpenAI describes it, for clients that look a model
up before using it. A model the caller may not use is as absent as one that does not exist."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.auth import principal_of
from handler.routes.info import STARTED
from router.errors import NotFound, echoed
from router.router import Router
from router.tenants.gate import allowed

__all__ = ["add_model_routes"]


def add_model_routes(app: FastAPI, router: Router) -> None:
    async def model(request: Request) -> Response:
        name: str = request.path_params["model"]
        group = router.groups.get(name)
        if group is None or not allowed(principal_of(request), name, group):
            raise NotFound(f"The model `{echoed(name)}` does not exist or you do not have access "
                           "to it.",
                           param="model")
        return Response(orjson.dumps({"id": name, "object": "model", "created": STARTED,
                                      "owned_by": "laneway"}), media_type="application/json")

    for path in ("/models/{model:path}", "/v1/models/{model:path}"):
        app.add_api_route(path, model, methods=["GET"])
