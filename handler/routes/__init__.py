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


def add_routes(app: FastAPI, router: Router, limits: HttpLimits, watch_disconnect: bool) -> None:
    """Every route; none checks the key itself (handler/auth.py's middleware does, for all)."""
    # Starlette tries routes in order: the inference APIs first, so a request to one of them
    # is not matched against forty management routes (~25 µs each time, per request).
    add_inference_routes(app, router, limits, watch_disconnect)
    add_responses_routes(app, router, limits, watch_disconnect)
    add_messages_routes(app, router, limits, watch_disconnect)
    add_info_routes(app, router)
    add_key_routes(app, router)
    add_team_routes(app, router)
    add_model_routes(app, router)
