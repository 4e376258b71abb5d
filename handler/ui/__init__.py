"""The lanes dashboard: `GET /ui` (one page) and `GET /ui/snapshot` (its data, JSON).

The page is public like the API docs: it holds no data, only a sign-in form and the code that
polls the snapshot. The snapshot needs the master key (or, on a gateway without one, nothing:
every caller is then unrestricted, as on every other route). The page keeps the key in the
tab's sessionStorage and sends it as a bearer token, never in a URL.

The page is one document: index.html with app.css, chart.js and app.js inlined when first
served (no further request, nothing from a CDN), under a Content-Security-Policy that allows
exactly those inline blocks (by hash) and requests to this origin. `NO_UI=True` turns both
routes off (handler/app.py).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.auth import principal_of
from handler.streaming import json_response
from router.errors import PermissionDenied
from router.router import Router
from router.snapshot import Snapshots

__all__ = ["UI_PATH", "add_ui_routes"]

UI_PATH = "/ui"


def _read(name: str) -> str:
    return resources.files("handler.ui").joinpath("static", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def page() -> tuple[bytes, str]:
    """The page and its Content-Security-Policy."""
    css = _read("app.css")
    js = _read("chart.js") + "\n" + _read("app.js")
    html = _read("index.html").replace("/*APP_CSS*/", css).replace("/*APP_JS*/", js)
    csp = (f"default-src 'none'; script-src {_sha256(js)}; style-src {_sha256(css)}; "
           "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")
    return html.encode(), csp


def add_ui_routes(app: FastAPI, router: Router) -> Snapshots:
    snapshots = Snapshots(router)

    async def ui(request: Request) -> Response:
        body, csp = page()
        return Response(body, media_type="text/html; charset=utf-8", headers={
            "content-security-policy": csp, "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer", "cache-control": "no-cache"})

    async def snapshot(request: Request) -> Response:
        principal = principal_of(request)
        if principal.kind == "key":
            raise PermissionDenied("The dashboard needs the master key, not a virtual key.")
        return json_response(await snapshots.take(), headers={"cache-control": "no-store"})

    app.add_api_route(UI_PATH, ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{UI_PATH}/snapshot", snapshot, methods=["GET"])
    return snapshots
