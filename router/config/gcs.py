"""Reading the config object from GCS through the JSON API over the lean HTTP client.

Outside an emulator (STORAGE_EMULATOR_HOST) each request carries the instance service account's
token from the metadata server (GCE_METADATA_HOST moves it), cached until shortly before it
expires. The object's generation is its version: a reload check asks for the metadata only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from router.errors import ConfigError
from router.httpclient import UpstreamClient
from router.httpclient.oneshot import Reply, Unreachable, request

__all__ = ["forget_cached", "generation", "get_object"]

_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
_token: dict[str, tuple[str, float]] = {}


def forget_cached() -> None:
    _token.clear()


async def get_object(client: UpstreamClient, bucket: str, key: str,
                     environ: Mapping[str, str]) -> tuple[bytes, str | None]:
    """(body, generation) of the object."""
    reply = await _get(client, bucket, key, environ, "?alt=media")
    tag = reply.headers.get("x-goog-generation")
    return reply.body, tag


async def generation(client: UpstreamClient, bucket: str, key: str,
                     environ: Mapping[str, str]) -> str | None:
    """The object's current generation (None when the store does not say)."""
    reply = await _get(client, bucket, key, environ, "")
    try:
        meta: Any = json.loads(reply.body)
    except ValueError:
        return None
    value = meta.get("generation") if isinstance(meta, dict) else None
    return str(value) if value is not None else None


async def _get(client: UpstreamClient, bucket: str, key: str, environ: Mapping[str, str],
               query: str) -> Reply:
    uri = f"gs://{bucket}/{key}"
    emulator = environ.get("STORAGE_EMULATOR_HOST", "").strip()
    headers: dict[str, str] = {}
    if emulator:
        base = emulator if "://" in emulator else f"http://{emulator}"
    else:
        base = "https://storage.googleapis.com"
        headers["Authorization"] = f"Bearer {await _access_token(client, environ, uri)}"
    url = (f"{base.rstrip('/')}/storage/v1/b/{quote(bucket, safe='')}/o/"
           f"{quote(key, safe='')}{query}")
    try:
        reply = await request(client, "GET", url, headers=headers)
    except Unreachable as exc:
        raise ConfigError(f"cannot reach GCS to read config object {uri}: {exc}") from None
    if reply.status == 404:
        raise ConfigError(f"config object {uri} not found")
    if reply.status in (401, 403):
        raise ConfigError(f"access denied reading config object {uri} ({reply.status})")
    if reply.status != 200:
        raise ConfigError(f"cannot read config object {uri}: GCS answered {reply.status}")
    return reply


async def _access_token(client: UpstreamClient, environ: Mapping[str, str], uri: str) -> str:
    # GCE_METADATA_HOST is the override Google's own clients honour.
    host = environ.get("GCE_METADATA_HOST", "").strip() or "metadata.google.internal"
    cached = _token.get(host)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    failure = (
        f"cannot read config object {uri}: no access token from the GCP metadata server "
        "(outside Google Cloud, set STORAGE_EMULATOR_HOST or copy the config to a file)"
    )
    try:
        reply = await request(client, "GET", f"http://{host}{_TOKEN_PATH}",
                              headers={"Metadata-Flavor": "Google"}, timeout=5.0)
        body: Any = json.loads(reply.body) if reply.status == 200 else None
    except (Unreachable, ValueError):
        raise ConfigError(failure) from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise ConfigError(failure)
    lifetime = body.get("expires_in")
    seconds = float(lifetime) if isinstance(lifetime, int | float) else 300.0
    _token[host] = (token, time.monotonic() + max(seconds - 300.0, 0.0))
    return token
