"""Google OAuth2 access tokens for Vertex AI deployments.

Credentials, first found wins: the deployment's `vertex_credentials` (a service-account or
authorized-user JSON document, inline, as a YAML mapping, or as a file path; the config loader
already resolved `os.environ/NAME`), else VERTEXAI_CREDENTIALS, else the file named by
GOOGLE_APPLICATION_CREDENTIALS, else the metadata server of the machine laneway runs on
(GCE_METADATA_HOST moves it, as Google's own clients allow).

A service account's token is got with the JWT bearer grant (an RS256 assertion signed with
`cryptography`, imported only here and only then) at its `token_uri`. A token is cached until
five minutes before it expires (half its life when it lives under ten minutes) and shared by
every deployment using the same identity; while one is being fetched, every other request
waits for that same fetch. Tokens and private keys go to `remember_secret`, never to a log or
an error message: a failing token endpoint is a 503 that names the endpoint and the OAuth
error code only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from router.errors import AuthenticationFailed, UpstreamUnavailable, redact
from router.groups import remember_secret
from router.httpclient.oneshot import Unreachable, request

if TYPE_CHECKING:
    from router.httpclient import UpstreamClient

__all__ = ["SCOPE", "GcpAuth", "forget_tokens"]

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_METADATA_TOKEN = "/computeMetadata/v1/instance/service-accounts/default/token"
_METADATA_PROJECT = "/computeMetadata/v1/project/project-id"
_REFRESH_MARGIN = 300.0
_TIMEOUT = 10.0


@dataclass(slots=True)
class _Token:
    """One identity's cached token and the fetch in progress, if any."""

    value: str = ""
    refresh_at: float = 0.0  # time.monotonic()
    pending: asyncio.Future[str] | None = field(default=None, repr=False)


_tokens: dict[tuple[str, ...], _Token] = {}


def forget_tokens() -> None:
    """Drop every cached token (a test, or credentials rotated under a running process)."""
    _tokens.clear()


def _refresh_at(expires_in: Any) -> float:
    lifetime = float(expires_in) if type(expires_in) in (int, float) else 3600.0
    margin = _REFRESH_MARGIN if lifetime >= 2 * _REFRESH_MARGIN else lifetime / 2
    return time.monotonic() + max(lifetime - margin, 0.0)


class GcpAuth:
    """The credentials of one deployment, read once; tokens come from the shared cache."""

    def __init__(self, params: Mapping[str, Any], env: Mapping[str, str], where: str) -> None:
        self._where = where
        self._env = env
        raw = (params.get("vertex_credentials") or params.get("vertex_ai_credentials")
               or env.get("VERTEXAI_CREDENTIALS"))
        self.info: dict[str, Any] | None = None
        if raw:
            self.info = _read_credentials(raw, where)
        elif env.get("GOOGLE_APPLICATION_CREDENTIALS"):
            self.info = _read_credentials(env["GOOGLE_APPLICATION_CREDENTIALS"], where)
        host = env.get("GCE_METADATA_HOST", "").strip() or "metadata.google.internal"
        self._metadata = host if "://" in host else f"http://{host}"
        self._signer: Any = None
        if self.info is None:
            self._key: tuple[str, ...] = ("metadata", self._metadata)
        elif self.info.get("type") == "authorized_user":
            self._key = ("user", str(self.info.get("client_id")),
                         str(self.info.get("refresh_token")))
        else:
            self._key = ("sa", str(self.info.get("client_email")), self._token_uri(),
                         str(self.info.get("private_key_id")))

    @property
    def project(self) -> str | None:
        """The project the credentials name (a service account's `project_id`)."""
        value = (self.info or {}).get("project_id") or (self.info or {}).get("quota_project_id")
        return str(value) if value else None

    async def metadata_project(self, http: UpstreamClient) -> str | None:
        """The project of the machine, from the metadata server (None off Google Cloud)."""
        if self.info is not None:
            return None
        try:
            reply = await request(http, "GET", self._metadata + _METADATA_PROJECT,
                                  headers={"Metadata-Flavor": "Google"}, timeout=_TIMEOUT)
        except Unreachable:
            return None
        text = reply.body.decode("utf-8", "replace").strip()
        return text if reply.status == 200 and text else None

    def forget(self, token: str) -> None:
        """The upstream refused `token`: fetch a new one next time."""
        cached = _tokens.get(self._key)
        if cached is not None and cached.value == token:
            cached.refresh_at = 0.0

    async def token(self, http: UpstreamClient) -> str:
        """A valid access token; at most one fetch per identity at a time."""
        cached = _tokens.setdefault(self._key, _Token())
        if cached.value and time.monotonic() < cached.refresh_at:
            return cached.value
        pending = cached.pending
        if pending is None or pending.get_loop() is not asyncio.get_running_loop():
            pending = cached.pending = asyncio.ensure_future(self._fetch(http, cached))
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        # Shielded: a waiter that gives up does not cancel the fetch the others wait for.
        return await asyncio.shield(pending)

    async def _fetch(self, http: UpstreamClient, cached: _Token) -> str:
        try:
            if self.info is None:
                value, expires_in = await self._from_metadata(http)
            elif self.info.get("type") == "authorized_user":
                value, expires_in = await self._from_refresh_token(http)
            else:
                value, expires_in = await self._from_service_account(http)
            remember_secret(value)
            cached.value, cached.refresh_at = value, _refresh_at(expires_in)
            return value
        finally:
            if cached.pending is asyncio.current_task():  # not a newer fetch on another loop
                cached.pending = None

    # ------------------------------------------------------------ the three sources

    def _token_uri(self) -> str:
        return str((self.info or {}).get("token_uri") or _GOOGLE_TOKEN_URI)

    async def _from_service_account(self, http: UpstreamClient) -> tuple[str, Any]:
        info = self.info or {}
        if self._signer is None:
            self._signer = _signer(info, self._where)
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT"}
        if info.get("private_key_id"):
            header["kid"] = str(info["private_key_id"])
        claims = {"iss": info.get("client_email"), "scope": SCOPE, "aud": self._token_uri(),
                  "iat": now, "exp": now + 3600}
        signing_input = f"{_b64(json.dumps(header))}.{_b64(json.dumps(claims))}"
        signature = self._signer(signing_input.encode())
        assertion = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
        return await self._token_call(http, {"grant_type": _JWT_GRANT, "assertion": assertion})

    async def _from_refresh_token(self, http: UpstreamClient) -> tuple[str, Any]:
        info = self.info or {}
        return await self._token_call(http, {
            "grant_type": "refresh_token", "client_id": info.get("client_id", ""),
            "client_secret": info.get("client_secret", ""),
            "refresh_token": info.get("refresh_token", "")})

    async def _token_call(self, http: UpstreamClient, form: dict[str, Any]) -> tuple[str, Any]:
        uri = self._token_uri()
        return await self._ask(http, "POST", uri, urlencode(form).encode(),
                               {"content-type": "application/x-www-form-urlencoded"},
                               f"the token endpoint {uri}")

    async def _from_metadata(self, http: UpstreamClient) -> tuple[str, Any]:
        return await self._ask(http, "GET", self._metadata + _METADATA_TOKEN, b"",
                               {"Metadata-Flavor": "Google"},
                               "the metadata server (outside Google Cloud, set "
                               "vertex_credentials to a service account's key)")

    async def _ask(self, http: UpstreamClient, method: str, url: str, body: bytes,
                   headers: dict[str, str], what: str) -> tuple[str, Any]:
        failure = f"{self._where}: cannot get a Google access token from {what}"
        try:
            reply = await request(http, method, url, headers=headers, body=body,
                                  timeout=_TIMEOUT)
        except Unreachable as exc:
            raise UpstreamUnavailable(f"{failure}: {redact(str(exc))}") from None
        try:
            payload: Any = json.loads(reply.body)
        except ValueError:
            payload = None
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if reply.status == 200 and isinstance(token, str) and token:
            return token, payload.get("expires_in")
        # Only the OAuth error code: a description may quote the assertion or the account.
        code = payload.get("error") if isinstance(payload, dict) else None
        detail = f" ({code})" if isinstance(code, str) and code.isidentifier() else ""
        raise UpstreamUnavailable(f"{failure}: HTTP {reply.status}{detail}")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _read_credentials(raw: Any, where: str) -> dict[str, Any]:
    """A credentials document from a mapping, a JSON string or a path to a JSON file."""
    if isinstance(raw, Mapping):
        info = dict(raw)
    else:
        text = str(raw).strip()
        if not text.startswith("{"):
            try:
                text = Path(text).expanduser().read_text()
            except OSError as exc:
                raise AuthenticationFailed(
                    f"{where}: cannot read the Google credentials file named by "
                    f"vertex_credentials ({type(exc).__name__})") from None
        try:
            info = json.loads(text)
        except ValueError:
            raise AuthenticationFailed(
                f"{where}: vertex_credentials is not a JSON credentials document") from None
    if not isinstance(info, dict):
        raise AuthenticationFailed(f"{where}: vertex_credentials is not a JSON object")
    kind = info.get("type", "service_account")
    needed = {"service_account": ("client_email", "private_key"),
              "authorized_user": ("client_id", "client_secret", "refresh_token")}.get(kind)
    if needed is None:
        raise AuthenticationFailed(f"{where}: Google credentials of type {kind!r} are not "
                                   "supported (use a service account key)")
    missing = [name for name in needed if not info.get(name)]
    if missing:
        raise AuthenticationFailed(f"{where}: the Google credentials lack {missing[0]}")
    for name in ("private_key", "client_secret", "refresh_token"):
        if info.get(name):
            remember_secret(str(info[name]))
    return info


def _signer(info: Mapping[str, Any], where: str) -> Callable[[bytes], bytes]:
    """RS256 with the service account's key; `cryptography` is imported here, on first use."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        raise AuthenticationFailed(
            f"{where}: signing with a service account key needs the cryptography package, "
            "which is not installed: pip install cryptography") from None
    try:
        key = serialization.load_pem_private_key(str(info["private_key"]).encode(),
                                                 password=None)
    except (ValueError, TypeError):
        raise AuthenticationFailed(
            f"{where}: the service account's private_key is not a PEM RSA key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthenticationFailed(f"{where}: the service account's private_key is not RSA")

    def sign(data: bytes) -> bytes:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    return sign

