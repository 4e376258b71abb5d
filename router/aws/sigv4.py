"""AWS Signature Version 4 for one HTTP request: the one signer laneway uses (S3 config reads,
Bedrock calls). It follows botocore's canonical form exactly (tests compare the two for fixed
inputs), so a request signed here verifies wherever a botocore-signed one does.

S3 signs the path as sent (already percent-encoded) and always sends `x-amz-content-sha256`;
every other service encodes the normalised path once more, as botocore's `SigV4Auth` does.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

__all__ = ["Credentials", "sign"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Headers a proxy or client may change on the way, which botocore leaves unsigned too.
_UNSIGNED = frozenset({
    "baggage", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "traceparent", "tracestate", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "x-amzn-trace-id", "authorization",
})


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key={self.access_key[:4]}…)"


def sign(method: str, url: str, *, service: str, region: str, credentials: Credentials,
         headers: Mapping[str, str] | None = None, body: bytes = b"",
         now: datetime.datetime | None = None) -> dict[str, str]:
    """`headers` plus the ones that sign the request (x-amz-date, the session token,
    authorization; for S3 x-amz-content-sha256)."""
    moment = now or datetime.datetime.now(datetime.UTC)
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    out = {k: v for k, v in (headers or {}).items()
           if k.lower() not in ("authorization", "x-amz-date", "x-amz-security-token")}
    out["X-Amz-Date"] = stamp
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    if service == "s3":
        out.setdefault("X-Amz-Content-SHA256", payload)
    for name, value in out.items():
        if name.lower() == "x-amz-content-sha256":
            payload = value

    parts = urlsplit(url)
    signed: dict[str, list[str]] = {}
    for name, value in out.items():
        low = name.lower()
        if low not in _UNSIGNED:
            signed.setdefault(low, []).append(" ".join(str(value).split()))
    if "host" not in signed:
        signed["host"] = [_host(url)]
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{','.join(signed[n])}\n" for n in names)
    signed_names = ";".join(names)
    path = parts.path if service == "s3" else quote(_normalise(parts.path), safe="/~")
    canonical = "\n".join([
        method.upper(), path or "/", _query(parts.query), canonical_headers, signed_names,
        payload])
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{credentials.secret_key}".encode()
    for part in (stamp[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
                            f"SignedHeaders={signed_names}, Signature={signature}")
    return out


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _query(query: str) -> str:
    if not query:
        return ""
    pairs = sorted(pair.partition("=")[::2] for pair in query.split("&"))
    return "&".join(f"{k}={v}" for k, v in pairs)


def _normalise(path: str) -> str:
    """The path without dot segments or empty segments (botocore's `normalize_url_path`)."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    lead = "/" if path.startswith("/") else ""
    tail = "/" if path.endswith("/") and kept else ""
    return lead + "/".join(kept) + tail
