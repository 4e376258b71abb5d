"""A loopback fake Azure OpenAI resource: Azure's URL layout and auth in front of fake_openai.

Routes: POST /openai/deployments/<deployment>/{chat/completions,completions,embeddings}
?api-version=... (a missing api-version is Azure's 404) and the v1 API /openai/v1/...
Authentication: an `api-key` header or an `Authorization: Bearer` token (else Azure's 401);
started with FAKE_ENTRA_SIGNING_KEY, bearer tokens must be unexpired ones a `fake_entra` with
that key issued.
Everything else — knobs, recorded requests (with Azure's original path and query) — is
`fake_openai`'s; `error=content_filter` gives Azure's content-management error body.
"""

from __future__ import annotations

import os
import re

import orjson

from tests.support import fake_openai
from tests.support.fake_openai import (
    Receive,
    Scope,
    Send,
    _send_json,
    control,
    headers_of,
    serve,
    tracking,
)

_DEPLOYMENT_PATH = re.compile(
    r"^/openai/deployments/([^/]+)/(chat/completions|completions|embeddings)$")


def _azure_error(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    path = scope["path"]
    headers = headers_of(scope)
    if not headers.get("api-key") and not headers.get("authorization", "").startswith("Bearer "):
        await _send_json(send, 401, _azure_error(
            "401", "Access denied due to invalid subscription key or wrong API endpoint."))
        return
    bearer = headers.get("authorization", "").removeprefix("Bearer ")
    if os.environ.get("FAKE_ENTRA_SIGNING_KEY") and bearer and not headers.get("api-key"):
        from tests.support.fake_entra import token_valid

        if not token_valid(bearer):
            fake_openai.record(scope, {})
            await _send_json(send, 401, _azure_error(
                "401", "Unauthorized. Access token is missing, invalid, audience is incorrect "
                "(https://cognitiveservices.azure.com), or have expired."))
            return
    match = _DEPLOYMENT_PATH.match(path)
    if match:
        if b"api-version=" not in scope["query_string"]:
            await _send_json(send, 404, _azure_error("404", "Resource not found"))
            return
        route = match.group(2)
    elif path.startswith("/openai/v1/"):
        route = path.removeprefix("/openai/v1/")
    else:
        await _send_json(send, 404, _azure_error("404", "Resource not found"))
        return
    scope["fake_original_path"], scope["path"] = path, f"/v1/{route}"
    await fake_openai._app(scope, receive, send)  # the OpenAI behaviour behind it


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Azure OpenAI resource")
