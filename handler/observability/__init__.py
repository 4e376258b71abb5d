"""The gateway's observability: per-request JSON log lines, `/metrics`, CloudWatch EMF on
Lambda, Langfuse and webhook callbacks, Slack alerts, and the `x-laneway-overhead-ms` header.

    hub = install_observability(app, router, config)          # from create_app
    handler = flushing(Mangum(app), hub)                      # on Lambda

See docs/observability.md for what is logged, the metric names and the settings.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from handler.observability.hub import Observability
from handler.observability.lambda_flush import flushing
from handler.observability.middleware import ObservabilityMiddleware
from handler.observability.route import add_metrics_route
from router.observe.settings import ObserveSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from router.config import Config
    from router.router import Router

__all__ = ["Observability", "flushing", "install_observability"]

log = logging.getLogger("laneway.observe")


def install_observability(
    app: FastAPI, router: Router, config: Config
) -> Observability:
    settings = ObserveSettings.from_config(config)
    for problem in settings.problems:
        log.error("config: %s", problem)
    hub = Observability(router, settings)
    app.state.observability = hub
    app.add_middleware(ObservabilityMiddleware, hub=hub)
    add_metrics_route(app, hub)
    app.router.on_shutdown.append(hub.flush)  # callbacks still pending go out on SIGTERM
    return hub
