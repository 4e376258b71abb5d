"""The FastAPI application: OpenAI-compatible routes over one `Router`.

`create_app(config)` builds an app; the module attribute `app` (for `uvicorn handler.app:app`)
is built on first access from the config the environment names (CONFIG_FILE_PATH,
LANEWAY_CONFIG or LITELLM_CONFIG_BUCKET_*), so importing this module does no work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from handler.auth import Authenticator, AuthMiddleware
from handler.edge import EdgeMiddleware
from handler.errors import install_error_handlers
from handler.limits import HttpLimits
from handler.logs import hide_query_strings
from handler.observability import install_observability
from handler.routes import add_routes
from router.config.serving import require_models
from router.router import Router

if TYPE_CHECKING:
    from router.config import Config

log = logging.getLogger("laneway")

__all__ = ["create_app", "master_key_of"]


def master_key_of(config: Config) -> str | None:
    env: Mapping[str, str] = config.env
    return (config.general_settings.master_key or env.get("LANEWAY_MASTER_KEY")
            or env.get("LITELLM_MASTER_KEY") or None)


def _flag(value: object) -> bool:
    return str(value or "").lower() in ("1", "true", "yes")


def create_app(config: Config, *, watch_disconnect: bool = True) -> FastAPI:
    """The gateway for `config`. `watch_disconnect` frees a waiting request's place in line as
    soon as its client goes away; off under Mangum, where there is no connection to watch."""
    no_docs = _flag(config.env.get("NO_DOCS"))
    app = FastAPI(
        title="laneway",
        summary="OpenAI-compatible LLM gateway with priority lanes",
        version="0.1.0",
        docs_url=None if no_docs else "/docs",
        redoc_url=None if no_docs else "/redoc",
        openapi_url=None if no_docs else "/openapi.json",
    )
    # `/v1/chat/completions/` is a 404 like any unknown path: Starlette's redirect to the slash-less
    # URL would be built from the client's Host header (an open redirect).
    app.router.redirect_slashes = False
    router = Router.from_config(config)
    require_models(config, router.deployments())  # the gateway refuses to serve nothing
    app.state.router = router
    # Under uvicorn the state backend connects before the first request; under Mangum
    # (lifespan off) it connects on first use instead.
    app.router.on_startup.append(router.warm)
    app.router.on_shutdown.append(router.aclose)
    app.state.config = config
    install_error_handlers(app)
    limits = HttpLimits.from_config(config)
    app.state.limits = limits
    add_routes(app, router, limits, watch_disconnect)
    if not _flag(config.env.get("NO_UI")):
        from handler.ui import add_ui_routes

        add_ui_routes(app, router)
    # Outermost last: observability sees every answer, the edge's and auth's refusals included;
    # the edge gives every request its id and bounds its body before auth or a route runs.
    app.add_middleware(AuthMiddleware, auth=Authenticator(master_key_of(config), router.tenants))
    app.add_middleware(EdgeMiddleware, limits=limits)
    install_observability(app, router, config)
    hide_query_strings()
    if config.general_settings.config_reload_seconds:
        from handler.reload import install_reload

        # Under Mangum (watch_disconnect off) nothing runs between invocations: the Lambda
        # handler checks as an invocation starts instead of a background task.
        install_reload(app, config, background=watch_disconnect)
    log.info("laneway serving model groups: %s (state: %s)",
             ", ".join(router.model_names()) or "(none)", router.state.name)
    return app


def _app_from_environment() -> FastAPI:
    from handler.logs import setup_logging
    from router.config import load_config

    setup_logging(os.environ.get("LANEWAY_LOG_LEVEL", "INFO"))
    return create_app(load_config())


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    global _app
    if name == "app":
        if _app is None:
            _app = _app_from_environment()
        return _app
    raise AttributeError(name)
