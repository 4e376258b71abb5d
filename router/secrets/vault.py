"""HashiCorp Vault, KV version 2: `GET {addr}/v1/{mount}/data/{path}`, the value in the
secret's `key` field (LiteLLM's convention; a secret with a single field gives that field).

Settings, LiteLLM's names first and then Vault's own: address HCP_VAULT_ADDR or VAULT_ADDR
(or `key_management_settings.api_base`; http://127.0.0.1:8200 by default); a token
HCP_VAULT_TOKEN or VAULT_TOKEN, or AppRole with HCP_VAULT_APPROLE_ROLE_ID /
HCP_VAULT_APPROLE_SECRET_ID (or VAULT_ROLE_ID / VAULT_SECRET_ID) logging in at
HCP_VAULT_APPROLE_MOUNT_PATH (default `approle`); namespace HCP_VAULT_NAMESPACE or
VAULT_NAMESPACE (sent as X-Vault-Namespace); KV mount HCP_VAULT_MOUNT_NAME (default `secret`);
path prefix HCP_VAULT_PATH_PREFIX (`litellm` reads secret/data/litellm/NAME).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from router.httpclient import UpstreamClient
from router.httpclient.oneshot import Unreachable, request
from router.secrets.base import SecretNotFound, SecretUnavailable, env_first, json_body

__all__ = ["HashicorpVault"]

_NAME = re.compile(r"^[A-Za-z0-9_.@+=/-]{1,512}$")


class HashicorpVault:
    label = "HashiCorp Vault"

    def __init__(self, environ: Mapping[str, str], api_base: str | None, timeout: float) -> None:
        e = environ
        self.addr = (api_base or env_first(e, "HCP_VAULT_ADDR", "VAULT_ADDR")
                     or "http://127.0.0.1:8200").rstrip("/")
        self.static_token = env_first(e, "HCP_VAULT_TOKEN", "VAULT_TOKEN")
        self.role_id = env_first(e, "HCP_VAULT_APPROLE_ROLE_ID", "VAULT_ROLE_ID")
        self.secret_id = env_first(e, "HCP_VAULT_APPROLE_SECRET_ID", "VAULT_SECRET_ID")
        self.approle_mount = env_first(e, "HCP_VAULT_APPROLE_MOUNT_PATH").strip("/") or "approle"
        self.namespace = env_first(e, "HCP_VAULT_NAMESPACE", "VAULT_NAMESPACE")
        self.mount = env_first(e, "HCP_VAULT_MOUNT_NAME").strip("/") or "secret"
        self.path_prefix = env_first(e, "HCP_VAULT_PATH_PREFIX").strip("/")
        self.timeout = timeout
        self._login: tuple[str, float] | None = None

    def secret_name(self, name: str) -> str:
        if not _NAME.match(name) or any(part in ("", ".", "..") for part in name.split("/")):
            raise ValueError("Vault paths may use letters, digits, _.@+=- and / between "
                             "non-empty segments")
        return f"{self.path_prefix}/{name}" if self.path_prefix else name

    def _headers(self, token: str | None) -> dict[str, str]:
        headers = {"X-Vault-Namespace": self.namespace} if self.namespace else {}
        if token:
            headers["X-Vault-Token"] = token
        return headers

    async def prepare(self, client: UpstreamClient) -> None:
        if not (self.role_id and self.secret_id):
            if not self.static_token:
                raise SecretUnavailable("no Vault credentials: set HCP_VAULT_TOKEN (or "
                                        "VAULT_TOKEN), or an AppRole role id and secret id")
            return
        if self._login is not None and self._login[1] > time.monotonic():
            return
        import orjson

        url = f"{self.addr}/v1/auth/{self.approle_mount}/login"
        body = orjson.dumps({"role_id": self.role_id, "secret_id": self.secret_id})
        try:
            reply = await request(client, "POST", url, body=body, timeout=self.timeout,
                                  headers={**self._headers(None),
                                           "Content-Type": "application/json"})
        except Unreachable as exc:
            raise SecretUnavailable(f"cannot reach Vault at {self.addr}: {exc}") from None
        doc: Any = json_body(reply.body, "Vault's AppRole login") if reply.body else None
        auth = doc.get("auth") if isinstance(doc, dict) else None
        token = auth.get("client_token") if isinstance(auth, dict) else None
        if reply.status != 200 or not isinstance(token, str) or not token:
            raise SecretUnavailable(f"Vault's AppRole login failed (HTTP {reply.status})")
        lease = auth.get("lease_duration") if isinstance(auth, dict) else None
        seconds = float(lease) if isinstance(lease, int | float) and lease > 0 else 3600.0
        # Renewed a little before the lease ends (and at most halfway through a short one).
        self._login = (token, time.monotonic() + seconds - min(300.0, seconds / 2))

    async def read(self, client: UpstreamClient, name: str) -> str:
        await self.prepare(client)
        token = self._login[0] if self._login is not None else self.static_token
        url = f"{self.addr}/v1/{self.mount}/data/{quote(name, safe='/')}"
        try:
            reply = await request(client, "GET", url, headers=self._headers(token),
                                  timeout=self.timeout)
        except Unreachable as exc:
            raise SecretUnavailable(f"cannot reach Vault at {self.addr}: {exc}") from None
        if reply.status == 404:
            raise SecretNotFound(name)
        if reply.status in (401, 403):
            self._login = None  # an AppRole token revoked early: log in again next time
            raise SecretUnavailable(f"permission denied ({reply.status})")
        if reply.status != 200:
            raise SecretUnavailable(f"Vault answered {reply.status}")
        doc: Any = json_body(reply.body, "Vault")
        data = doc.get("data", {}).get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict):
            raise SecretUnavailable("the reply carried no KV v2 data (is the mount KV v2?)")
        value = data.get("key")
        if value is None and len(data) == 1:
            value = next(iter(data.values()))
        if value is None:
            raise SecretUnavailable("the secret has no `key` field (and more than one other)")
        return value if isinstance(value, str) else _text(value)


def _text(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)
