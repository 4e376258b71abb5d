"""Models, model info, health probes, queue status and the token counter."""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI, Request
from starlette.responses import Response

from handler.auth import principal_of
from handler.openapi import TOKEN_COUNTER_SCHEMA
from handler.streaming import json_response
from handler.validation import parse_body, validate_messages, validate_prompt
from router.errors import BadRequest, RequestError
from router.router import Router

__all__ = ["add_info_routes"]

STARTED = int(time.time())
"""When this process started: the `created` time of the models it lists."""


def add_info_routes(app: FastAPI, router: Router) -> None:
    async def models(request: Request) -> Response:
        names = router.model_names_for(principal_of(request))
        data = [{"id": name, "object": "model", "created": STARTED, "owned_by": "laneway"}
                for name in names]
        return json_response({"object": "list", "data": data})

    async def model_info(request: Request) -> Response:
        allowed = set(router.model_names_for(principal_of(request)))
        return json_response({"data": [d.public_info() for d in router.deployments()
                               if d.model_name in allowed or principal_of(request).unrestricted]})

    async def liveliness(request: Request) -> Response:
        return json_response({"status": "alive"})

    async def readiness(request: Request) -> Response:
        try:
            await router.state.ping()
        except RequestError:
            return json_response({"status": "unhealthy", "state": router.state.name}, 503)
        return json_response({"status": "healthy", "state": router.state.name})

    async def health(request: Request) -> Response:
        try:
            await router.state.ping()
            state_ok = True
        except RequestError:
            state_ok = False
        return json_response({
            "status": "healthy" if state_ok else "unhealthy",
            "state": {"backend": router.state.name, "reachable": state_ok},
            "model_groups": router.model_names(),
            "deployments": len(router.deployments()),
        }, 200 if state_ok else 503)

    async def queue_status(request: Request) -> Response:
        groups = []
        lines = await router.queue_status()
        shares, tiers = await asyncio.gather(router.tenant_shares(lines),
                                             router.tier_use(list(lines)))
        share_of = dict(router.options.priority_reservation)
        for name, depth in lines.items():
            groups.append({
                "model_group": name,
                "waiting": sum(d.count for d in depth),
                "oldest_wait_ms": round(max(d.oldest_wait for d in depth) * 1000, 1),
                "priorities": [
                    {"priority": d.priority, "waiting": d.count,
                     "oldest_wait_ms": round(d.oldest_wait * 1000, 1)}
                    for d in depth
                ],
                "tenants": [
                    {"tenant": t.tenant, "waiting": t.waiting, "served_tokens": t.served,
                     "served_share": round(t.share, 4)}
                    for t in shares.get(name, ())
                ],
                **({"tiers": [{"tier": t.tier, "share": share_of.get(t.tier, 0.0),
                               "waiting": t.waiting, "in_flight": t.in_flight}
                              for t in tiers[name]]} if name in tiers else {}),
            })
        return json_response({"object": "queue.status", "state": router.state.name,
                              "groups": groups})

    async def token_counter(request: Request) -> Response:
        body = parse_body(await request.body())
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("`model` is required.", param="model")
        deployment = router.group_for(model, principal_of(request)).deployments[0]
        counter = deployment.token_counter()
        if body.get("messages") is not None:
            validate_messages(body["messages"])
            tools = body.get("tools")
            if tools is not None and not isinstance(tools, list):
                raise BadRequest("`tools` must be an array.", param="tools")
            total = counter.messages(body["messages"], tools)
        elif body.get("prompt") is not None:
            prompt = body["prompt"]
            validate_prompt(prompt)
            # Token ids are already tokens; text is counted.
            total = (len(prompt) if isinstance(prompt, list) and prompt
                     and not isinstance(prompt[0], str) else counter.text(prompt))
        else:
            raise BadRequest("Send `messages` (a list) or `prompt`.", param="messages")
        return json_response({"total_tokens": total, "request_model": model,
                      "model_used": deployment.model, "tokenizer_type": counter.name})

    routes = [
        (("/models", "/v1/models"), models, "GET"),
        (("/model/info", "/v1/model/info"), model_info, "GET"),
        (("/health/liveliness", "/health/liveness"), liveliness, "GET"),
        (("/health/readiness",), readiness, "GET"),
        (("/health",), health, "GET"),
        (("/queue/status",), queue_status, "GET"),
        (("/utils/token_counter",), token_counter, "POST"),
    ]
    for paths, fn, method in routes:
        for path in paths:
            extra = TOKEN_COUNTER_SCHEMA if fn is token_counter else None
            app.add_api_route(path, fn, methods=[method], openapi_extra=extra)
