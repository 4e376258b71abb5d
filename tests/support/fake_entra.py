"""A loopback fake Microsoft Entra ID token endpoint (OAuth 2.0 client credentials).

POST /<tenant>/oauth2/v2.0/token with a form body: `grant_type=client_credentials`, `scope`
ending in `/.default`, `client_id` and `client_secret`, which must equal
FAKE_ENTRA_CLIENT_SECRET (else Entra's 401 `invalid_client`, AADSTS7000215). Tokens are
`entra.<n>.<expiry>.<hmac>`, signed with FAKE_ENTRA_SIGNING_KEY so that `fake_azure`, given the
same key, accepts exactly the tokens issued here and only until they expire (`token_valid`).
Knobs in the client id (`+key=value`): `short=1` (a token valid for 60 s, inside any refresh
margin), `status=N`, `delay=S`. Recorded requests carry `form` and `tenant`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import os
import re
import time
from urllib.parse import parse_qsl

import orjson

from tests.support.fake_openai import (
    STATE,
    Receive,
    Scope,
    Send,
    _read_body,
    _send_json,
    control,
    record,
    serve,
    tracking,
)

_ROUTE = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
_issued = itertools.count(1)


def _signature(body: str) -> str:
    key = os.environ.get("FAKE_ENTRA_SIGNING_KEY", "entra-signing-key").encode()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]


def token_valid(token: str) -> bool:
    """Whether `token` was issued by a fake Entra with this process's signing key, unexpired."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "entra" or not parts[2].isdigit():
        return False
    return (hmac.compare_digest(parts[3], _signature(".".join(parts[:3])))
            and int(parts[2]) > time.time())


async def _error(send: Send, status: int, error: str, description: str, code: int) -> None:
    await _send_json(send, status, orjson.dumps({
        "error": error, "error_description": f"AADSTS{code}: {description}",
        "error_codes": [code], "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "0b2f4c4e-0000-4000-8000-000000000000",
        "correlation_id": "7d1f2a3b-0000-4000-8000-000000000000"}))


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    form = dict(parse_qsl((await _read_body(receive)).decode()))
    match = _ROUTE.match(scope["path"])
    _, k, _ = record(scope, form, model=form.get("client_id", ""))
    STATE.requests[-1].update(form=form, tenant=match.group(1) if match else None)
    if k.get("delay"):
        await asyncio.sleep(float(k["delay"]))
    if not match or scope["method"] != "POST":
        await _error(send, 404, "invalid_request", "Endpoint not found.", 900561)
        return
    if form.get("grant_type") != "client_credentials" or not form.get(
            "scope", "").endswith("/.default"):
        await _error(send, 400, "invalid_scope", "The provided value for scope is not valid.",
                     1002012)
        return
    if form.get("client_secret") != os.environ.get("FAKE_ENTRA_CLIENT_SECRET", "entra-secret"):
        await _error(send, 401, "invalid_client", "Invalid client secret provided. Ensure the "
                     "secret being sent in the request is the client secret value.", 7000215)
        return
    if k.get("status"):
        await _error(send, int(k["status"]), "temporarily_unavailable",
                     "The service is temporarily unavailable.", 90033)
        return
    lifetime = 60 if k.get("short") else 3599
    body = f"entra.{next(_issued)}.{int(time.time()) + lifetime}"
    await _send_json(send, 200, orjson.dumps({
        "token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
        "access_token": f"{body}.{_signature(body)}"}))


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake Microsoft Entra ID token endpoint")
