"""AWS credentials from the sources laneway reads itself, in botocore's order:

1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (Lambda);
2. anything botocore would read first and laneway does not (a profile, shared credential or
   config files, SSO, web identity, assumed roles): botocore is imported and asked, lazily;
3. the container credentials endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS) or
   AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) (Lambda
   SnapStart, EKS Pod Identity);
4. IMDSv2 on EC2 (AWS_EC2_METADATA_DISABLED=true turns it off;
   AWS_EC2_METADATA_SERVICE_ENDPOINT moves it).

Credentials from 3 and 4 are cached until five minutes before they expire.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from router.aws.sigv4 import Credentials
from router.httpclient import UpstreamClient
from router.httpclient.oneshot import Unreachable, request

__all__ = ["CredentialsUnavailable", "forget_cached", "resolve"]

_ECS_HOST = "http://169.254.170.2"
_IMDS = "http://169.254.169.254"
# Container endpoints botocore accepts over plain HTTP (anything else must be HTTPS).
_CONTAINER_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "169.254.170.2",
                              "169.254.170.23", "fd00:ec2::23"})
_MARGIN = datetime.timedelta(minutes=5)
_BOTOCORE_HINTS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                   "AWS_ROLE_ARN")

_cache: dict[str, tuple[Credentials, datetime.datetime | None]] = {}


class CredentialsUnavailable(Exception):
    """No source had credentials; the message says which were tried."""


def forget_cached() -> None:
    """Drop cached credentials (after a SnapStart restore they may belong to another sandbox)."""
    _cache.clear()


async def resolve(environ: Mapping[str, str], client: UpstreamClient) -> Credentials:
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None)
    if _botocore_has_more(environ):
        return await asyncio.to_thread(_from_botocore)
    where = "|".join(environ.get(name, "") for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT"))
    cached = _cache.get(where)
    if cached and (cached[1] is None or cached[1] - _MARGIN > _now()):
        return cached[0]
    found = await _container(environ, client) or await _imds(environ, client)
    if found is None:
        raise CredentialsUnavailable(
            "no AWS credentials found (tried AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the "
            "container credentials endpoint and the EC2 instance metadata service)")
    _cache[where] = found
    return found[0]


def _botocore_has_more(environ: Mapping[str, str]) -> bool:
    if any(environ.get(name) for name in _BOTOCORE_HINTS):
        return True
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    files = (environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials",
             environ.get("AWS_CONFIG_FILE") or home / ".aws" / "config")
    return any(Path(f).expanduser().is_file() for f in files)


def _from_botocore() -> Credentials:
    import botocore.session

    found = botocore.session.Session().get_credentials()
    if found is None:
        raise CredentialsUnavailable("no AWS credentials found (botocore's chain found none)")
    frozen = found.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)


async def _container(environ: Mapping[str, str], client: UpstreamClient
                     ) -> tuple[Credentials, datetime.datetime | None] | None:
    relative = environ.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    full = environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if relative:
        url = _ECS_HOST + relative
    elif full:
        parts = urlsplit(full)
        if parts.scheme != "https" and (parts.hostname or "") not in _CONTAINER_HOSTS:
            raise CredentialsUnavailable(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a loopback/container "
                "address")
        url = full
    else:
        return None
    headers: dict[str, str] = {"Accept": "application/json"}
    token_file = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    token = environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise CredentialsUnavailable(
                f"cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: {exc.strerror}") from None
    if token:
        headers["Authorization"] = token
    try:
        reply = await request(client, "GET", url, headers=headers, timeout=2.0)
    except Unreachable as exc:
        raise CredentialsUnavailable(
            f"the container credentials endpoint did not answer: {exc}") from None
    if reply.status != 200:
        raise CredentialsUnavailable(
            f"the container credentials endpoint answered {reply.status}")
    return _parse(reply.body, "the container credentials endpoint")


async def _imds(environ: Mapping[str, str], client: UpstreamClient
                ) -> tuple[Credentials, datetime.datetime | None] | None:
    if environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return None
    base = (environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT") or _IMDS).rstrip("/")
    try:
        timeout = float(environ.get("AWS_METADATA_SERVICE_TIMEOUT") or 1)
    except ValueError:
        timeout = 1.0
    try:
        session = await request(client, "PUT", f"{base}/latest/api/token", timeout=timeout,
                                headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
        if session.status != 200:
            return None
        auth = {"X-aws-ec2-metadata-token": session.body.decode().strip()}
        roles = await request(client, "GET", f"{base}/latest/meta-data/iam/security-credentials/",
                              headers=auth, timeout=timeout)
        role = roles.body.decode().strip().splitlines()[0] if roles.status == 200 else ""
        if not role:
            return None
        reply = await request(client, "GET",
                              f"{base}/latest/meta-data/iam/security-credentials/{role}",
                              headers=auth, timeout=timeout)
    except (Unreachable, UnicodeDecodeError, IndexError):
        return None  # not on EC2 (or no role attached): botocore's chain would end here too
    if reply.status != 200:
        return None
    return _parse(reply.body, "the EC2 instance metadata service")


def _parse(body: bytes, where: str) -> tuple[Credentials, datetime.datetime | None]:
    try:
        doc: Any = json.loads(body)
        creds = Credentials(str(doc["AccessKeyId"]), str(doc["SecretAccessKey"]),
                            str(doc["Token"]) if doc.get("Token") else None)
    except (ValueError, KeyError, TypeError):
        raise CredentialsUnavailable(f"{where} sent no usable credentials") from None
    expiry = None
    if isinstance(doc.get("Expiration"), str):
        try:
            expiry = datetime.datetime.fromisoformat(doc["Expiration"].replace("Z", "+00:00"))
        except ValueError:
            expiry = None
    return creds, expiry


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
