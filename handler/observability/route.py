"""`GET /metrics`: the Prometheus exposition, behind the master key like every other route."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.observability.hub import Observability
from router.errors import NotFound

__all__ = ["add_metrics_route"]


def add_metrics_route(app: FastAPI, hub: Observability) -> None:
    async def metrics(request: Request) -> Response:
        if hub.prometheus is None:
            raise NotFound("Prometheus metrics are off on this gateway (LANEWAY_METRICS; on "
                           "Lambda they are CloudWatch EMF lines).")
        await hub.sample_queues()
        body, content_type = hub.prometheus.exposition()
        return Response(body, media_type=content_type)

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
