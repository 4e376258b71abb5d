"""Reading the config object from S3 with one SigV4-signed GET over the lean HTTP client.

Endpoint: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else the region's S3 endpoint. Region:
AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1 (a bucket elsewhere answers with its region,
and the GET is signed again for it). Addressing: LANEWAY_S3_ADDRESSING_STYLE `virtual` or
`path`; by default virtual-hosted on AWS's own endpoints for DNS-safe names, path-style on a
custom endpoint (MinIO, moto, LocalStack) or for names with dots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from router.aws.credentials import CredentialsUnavailable, resolve
from router.aws.sigv4 import sign
from router.errors import ConfigError
from router.httpclient import UpstreamClient
from router.httpclient.oneshot import Unreachable, request

__all__ = ["get_object", "object_url"]

_DNS_SAFE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_NOT_FOUND = {"NoSuchKey": "no such key", "NoSuchBucket": "no such bucket"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
           "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled"}


def region_of(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def object_url(bucket: str, key: str, environ: Mapping[str, str], region: str) -> str:
    endpoint = (environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or "")
    style = environ.get("LANEWAY_S3_ADDRESSING_STYLE", "").strip().lower() or "auto"
    if style not in ("auto", "virtual", "path"):
        raise ConfigError(
            f"LANEWAY_S3_ADDRESSING_STYLE must be 'virtual', 'path' or 'auto', not '{style}'")
    path = quote(key, safe="/~")
    if style == "auto":
        style = "virtual" if not endpoint and _DNS_SAFE.match(bucket) else "path"
    if not endpoint:
        endpoint = f"https://s3.{region}.amazonaws.com"
    parts = urlsplit(endpoint.rstrip("/"))
    if style == "virtual":
        return f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path}/{path}"
    return f"{parts.scheme}://{parts.netloc}{parts.path}/{quote(bucket, safe='')}/{path}"


async def get_object(client: UpstreamClient, bucket: str, key: str,
                     environ: Mapping[str, str], etag: str | None = None
                     ) -> tuple[bytes, str | None] | None:
    """(body, ETag) of the object, or None when `etag` is given and still current (304)."""
    uri = f"s3://{bucket}/{key}"
    try:
        credentials = await resolve(environ, client)
    except CredentialsUnavailable as exc:
        raise ConfigError(f"cannot read config object {uri}: {exc}") from None
    region = region_of(environ)
    for _ in range(2):  # a second time only when S3 names the bucket's own region
        url = object_url(bucket, key, environ, region)
        headers = sign("GET", url, service="s3", region=region, credentials=credentials,
                       headers={"If-None-Match": etag} if etag else None)
        try:
            reply = await request(client, "GET", url, headers=headers)
        except Unreachable as exc:
            raise ConfigError(f"cannot reach S3 to read config object {uri}: {exc}") from None
        moved_to = reply.headers.get("x-amz-bucket-region")
        if reply.status in (301, 400) and moved_to and moved_to != region:
            region = moved_to
            continue
        break
    if reply.status == 304:
        return None
    if reply.status == 200:
        return reply.body, reply.headers.get("etag")
    code = _error_code(reply.body) or str(reply.status)
    if code in _NOT_FOUND or reply.status == 404:
        detail = _NOT_FOUND.get(code, "no such key")
        raise ConfigError(f"config object {uri} not found ({detail})")
    if code in _DENIED or reply.status == 403:
        raise ConfigError(f"access denied reading config object {uri} ({code})")
    raise ConfigError(f"cannot read config object {uri}: S3 answered {reply.status} {code}")


def _error_code(body: bytes) -> str | None:
    found = re.search(rb"<Code>([^<]{1,100})</Code>", body)
    return found.group(1).decode("ascii", "replace") if found else None
