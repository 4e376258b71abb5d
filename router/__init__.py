"""laneway's engine: config, deployments, routing, shared state, priority lanes, providers.

    from router import Router
    router = Router(model_list=[...], routing_strategy="least-busy", redis_url=...)
    reply = await router.acompletion(model="gpt-4o", messages=[...], priority=0)

`router` never imports `handler` (the web face); importing this package does no work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.config import Config, load_config
    from router.router import Router

__all__ = ["Config", "Router", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "Router":
        from router.router import Router

        return Router
    if name in ("Config", "load_config"):
        import router.config as config

        return getattr(config, name)
    raise AttributeError(name)
