"""laneway's web face: the FastAPI app, auth, the OpenAI wire format and the entry points."""

from __future__ import annotations

import sys


def _import_fastapi_deferring_its_openapi_models() -> None:
    """FastAPI defines some sixty pydantic models for its OpenAPI document when it is imported,
    and building their validators is a sixth of a Lambda cold start. Only `/openapi.json` ever
    uses them, so they are built on that first request instead. Models defined after this
    import (laneway's own, FastAPI's per-route ones) are built as usual."""
    if "fastapi" in sys.modules:
        return
    from pydantic import BaseModel

    config = BaseModel.model_config
    before = config.get("defer_build")
    config["defer_build"] = True
    try:
        import fastapi  # noqa: F401
    finally:
        if before is None:
            config.pop("defer_build", None)
        else:
            config["defer_build"] = before


_import_fastapi_deferring_its_openapi_models()
