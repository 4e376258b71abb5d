"""STS AssumeRole over the query API, signed with laneway's SigV4 signer: temporary credentials
for a role (`aws_role_name`), kept until five minutes before they expire.

Concurrent callers asking for the same role with the same source credentials share one STS
call (single-flight); the answer is cached per (source key, role, session name, endpoint,
external id) for the whole process, so every deployment using that role shares it.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode
from xml.etree import ElementTree

from router.aws.sigv4 import Credentials, sign
from router.refreshing import Refreshing

__all__ = ["AssumeRoleFailed", "RoleRequest", "assume_role", "forget_cached"]

_MARGIN = datetime.timedelta(minutes=5)
_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


class _Poster(Protocol):  # UpstreamClient or httpx.AsyncClient
    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str],
                   timeout: Any) -> Any: ...


class AssumeRoleFailed(Exception):
    """STS refused (or could not be reached); `status` is STS's HTTP status, 0 when none."""

    def __init__(self, message: str, status: int = 0, code: str = "") -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True, slots=True)
class RoleRequest:
    role_arn: str
    session_name: str
    region: str
    endpoint: str
    """STS's URL (https://sts.<region>.amazonaws.com, or an override)."""
    external_id: str | None = None
    duration: int = 3600


_cache: Refreshing[Credentials] = Refreshing(margin=_MARGIN.total_seconds())


def forget_cached() -> None:
    _cache.clear()


async def assume_role(http: _Poster, source: Credentials, role: RoleRequest) -> Credentials:
    """The role's temporary credentials: cached, else from one STS call however many ask."""
    key = (source.access_key, role.role_arn, role.session_name, role.endpoint,
           role.external_id or "")

    async def fetch() -> tuple[Credentials, float]:
        found, expiry = await _call(http, source, role)
        return found, expiry.timestamp()

    return await _cache.get(key, fetch)


async def _call(http: _Poster, source: Credentials, role: RoleRequest
                ) -> tuple[Credentials, datetime.datetime]:
    import httpx

    from router.httpclient.errors import BadResponse

    form = {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": role.role_arn,
            "RoleSessionName": role.session_name, "DurationSeconds": str(role.duration)}
    if role.external_id:
        form["ExternalId"] = role.external_id
    body = urlencode(form).encode()
    url = role.endpoint.rstrip("/") + "/"
    headers = sign("POST", url, service="sts", region=role.region, credentials=source, body=body,
                   headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8",
                            "accept": "text/xml"})
    try:
        resp = await http.post(url, content=body, headers=headers,
                               timeout=httpx.Timeout(10.0))
    except (httpx.HTTPError, OSError, BadResponse) as exc:
        raise AssumeRoleFailed(f"cannot reach STS: {type(exc).__name__}") from None
    if resp.status_code != 200:
        code, message = _error(resp.content)
        raise AssumeRoleFailed(f"STS AssumeRole answered {resp.status_code} {code}: {message}",
                               resp.status_code, code)
    return _credentials(resp.content)


def _text(node: ElementTree.Element | None, name: str) -> str:
    if node is None:
        return ""
    child = node.find(_NS + name)
    if child is None:
        child = node.find(name)
    return (child.text or "").strip() if child is not None else ""


def _parse(content: bytes) -> ElementTree.Element | None:
    try:
        return ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return None


def _error(content: bytes) -> tuple[str, str]:
    root = _parse(content)
    err = None
    if root is not None:
        err = root.find(_NS + "Error")
        err = root.find("Error") if err is None else err
    if err is None:
        return "", content.decode("utf-8", "replace")[:200]
    return _text(err, "Code"), _text(err, "Message")[:300]


def _credentials(content: bytes) -> tuple[Credentials, datetime.datetime]:
    root = _parse(content)
    result = None if root is None else root.find(_NS + "AssumeRoleResult")
    creds = None if result is None else result.find(_NS + "Credentials")
    key, secret = _text(creds, "AccessKeyId"), _text(creds, "SecretAccessKey")
    token, expiry = _text(creds, "SessionToken"), _text(creds, "Expiration")
    if not (key and secret and token):
        raise AssumeRoleFailed("STS AssumeRole answered without credentials", 502)
    try:
        when = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    except ValueError:
        when = _now() + datetime.timedelta(minutes=15)  # the shortest session STS grants
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return Credentials(key, secret, token), when


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
