"""All HTTP routes of the gateway."""

from __future__ import annotations

from fastapi import FastAPI

from handler.auth import Authenticator
from handler.routes.inference import add_inference_routes
from handler.routes.info import add_info_routes
from handler.routes.keys import add_key_routes
from handler.routes.teams import add_team_routes
from router.router import Router

__all__ = ["add_routes"]


def add_routes(app: FastAPI, router: Router, auth: Authenticator, watch_disconnect: bool) -> None:
    add_inference_routes(app, router, auth, watch_disconnect)
    add_info_routes(app, router, auth)
    add_key_routes(app, router, auth)
    add_team_routes(app, router, auth)
