"""Google Cloud Secret Manager over its REST API: `GET {base}/v1/projects/{project}/secrets/
{name}/versions/latest:access`, the value base64 in `payload.data`.

Token: the service account's, from the metadata server (GCE_METADATA_HOST moves it, as for
Google's own clients), cached until five minutes before it expires. Project: LiteLLM's
GOOGLE_SECRET_MANAGER_PROJECT_ID, else GOOGLE_CLOUD_PROJECT, else the metadata server's.
API base: `key_management_settings.api_base`, else https://secretmanager.googleapis.com.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from router.httpclient import UpstreamClient
from router.httpclient.oneshot import Unreachable, request
from router.secrets.base import SecretNotFound, SecretUnavailable, env_first, json_body

__all__ = ["GoogleSecretManager"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_META = {"Metadata-Flavor": "Google"}
_TOKEN = "/computeMetadata/v1/instance/service-accounts/default/token"
_PROJECT = "/computeMetadata/v1/project/project-id"


class GoogleSecretManager:
    label = "Google Secret Manager"

    def __init__(self, environ: Mapping[str, str], api_base: str | None, timeout: float) -> None:
        host = env_first(environ, "GCE_METADATA_HOST") or "metadata.google.internal"
        self.metadata = host if "://" in host else f"http://{host}"
        self.project = env_first(environ, "GOOGLE_SECRET_MANAGER_PROJECT_ID",
                                 "GOOGLE_CLOUD_PROJECT")
        self.base = (api_base or "https://secretmanager.googleapis.com").rstrip("/")
        self.timeout = timeout
        self._token: tuple[str, float] | None = None

    def secret_name(self, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("Google Secret Manager names may use only letters, digits, "
                             "_ and - (up to 255 characters)")
        return name

    async def prepare(self, client: UpstreamClient) -> None:
        if not self.project:
            self.project = (await self._metadata(client, _PROJECT)).decode("utf-8",
                                                                           "replace").strip()
        if self._token is not None and self._token[1] > time.monotonic():
            return
        doc = await self._metadata(client, _TOKEN)
        try:
            token: Any = json_body(doc, "the GCP metadata server")
            access = token["access_token"]
            seconds = float(token.get("expires_in", 300))
        except (TypeError, KeyError, ValueError, AttributeError):
            raise SecretUnavailable("the GCP metadata server sent no access token") from None
        if not isinstance(access, str) or not access:
            raise SecretUnavailable("the GCP metadata server sent no access token")
        self._token = (access, time.monotonic() + max(seconds - 300.0, 0.0))

    async def _metadata(self, client: UpstreamClient, path: str) -> bytes:
        hint = ("(outside Google Cloud, set GCE_METADATA_HOST to a metadata server, or "
                "GOOGLE_SECRET_MANAGER_PROJECT_ID with another manager)")
        try:
            reply = await request(client, "GET", self.metadata + path, headers=_META,
                                  timeout=self.timeout)
        except Unreachable as exc:
            raise SecretUnavailable(f"the GCP metadata server did not answer: {exc} {hint}"
                                    ) from None
        if reply.status != 200:
            raise SecretUnavailable(f"the GCP metadata server answered {reply.status} {hint}")
        return reply.body

    async def read(self, client: UpstreamClient, name: str) -> str:
        await self.prepare(client)
        assert self._token is not None
        url = (f"{self.base}/v1/projects/{quote(self.project, safe='')}/secrets/"
               f"{quote(name, safe='')}/versions/latest:access")
        try:
            reply = await request(client, "GET", url, timeout=self.timeout,
                                  headers={"Authorization": f"Bearer {self._token[0]}"})
        except Unreachable as exc:
            raise SecretUnavailable(f"cannot reach {self.label}: {exc}") from None
        if reply.status == 404:
            raise SecretNotFound(name)
        if reply.status in (401, 403):
            raise SecretUnavailable(f"access denied ({reply.status})")
        if reply.status != 200:
            raise SecretUnavailable(f"{self.label} answered {reply.status}")
        doc: Any = json_body(reply.body, self.label)
        data = doc.get("payload", {}).get("data") if isinstance(doc, dict) else None
        if not isinstance(data, str):
            raise SecretUnavailable("the reply carried no payload")
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except ValueError:
            raise SecretUnavailable("the secret's payload is not base64 UTF-8 text") from None
