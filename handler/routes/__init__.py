"""All HTTP routes of the gateway."""

from __future__ import annotations

from fastapi import FastAPI

from handler.limits import HttpLimits
from handler.routes.inference import add_inference_routes
from handler.routes.info import add_info_routes
from handler.routes.keys import add_key_routes
from handler.routes.messages import add_messages_routes
from handler.routes.models import add_model_routes
from handler.routes.responses import add_responses_routes
from handler.routes.teams import add_team_routes
from router.router import Router

__all__ = ["add_routes"]

HOT_PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages")
"""The paths nearly every request takes, tried first: Starlette matches routes in order, about
1 µs each, and the docs routes and the other spellings of each API would come before them."""


def add_routes(app: FastAPI, router: Router, limits: HttpLimits, watch_disconnect: bool) -> None:
    """Every route; none checks the key itself (handler/auth.py's middleware does, for all)."""
    # The inference APIs first, so a request to one of them is not matched against forty
    # management routes.
    add_inference_routes(app, router, limits, watch_disconnect)
    add_responses_routes(app, router, limits, watch_disconnect)
    add_messages_routes(app, router, limits, watch_disconnect)
    add_info_routes(app, router)
    add_key_routes(app, router)
    add_team_routes(app, router)
    add_model_routes(app, router)
    _hot_first(app)


def _hot_first(app: FastAPI) -> None:
    # Each hot path is one exact POST route that no other route matches, so moving it to the
    # front changes which requests it serves not at all, only how soon it is found.
    routes = app.router.routes
    hot = sorted((r for r in routes if getattr(r, "path", None) in HOT_PATHS),
                 key=lambda r: HOT_PATHS.index(r.path))  # type: ignore[attr-defined]
    routes[:] = hot + [r for r in routes if r not in hot]
