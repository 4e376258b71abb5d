"""Checking the Redis address a config gives (`redis_url`, `redis_host`/`redis_port`, or their
environment variables) before anything tries to connect to it.

The address is chosen as the engine chooses it: `router_settings.redis_url`, else REDIS_URL,
else a URL built from `redis_host` (or REDIS_HOST) and `redis_port` (or REDIS_PORT). Messages
never quote the value: a URL may carry a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from router.config.settings import RouterSettings

__all__ = ["redis_problems"]

_SCHEMES = ("redis", "rediss")


def redis_problems(settings: RouterSettings, env: Mapping[str, str]) -> list[str]:
    if settings.redis_url:
        return _url_problems(settings.redis_url, "router_settings.redis_url")
    if env.get("REDIS_URL"):
        return _url_problems(env["REDIS_URL"], "REDIS_URL")
    host, host_from = settings.redis_host, "router_settings.redis_host"
    if not host:
        host, host_from = env.get("REDIS_HOST"), "REDIS_HOST"
    if not host:
        return []
    problems = []
    port: object = settings.redis_port  # already checked by the schema
    if port is None and env.get("REDIS_PORT"):
        raw = env["REDIS_PORT"].strip()
        port = int(raw) if raw.isdigit() and 0 < int(raw) < 65536 else None
        if port is None:
            problems.append("REDIS_PORT: must be a port number (1-65535)")
    host = host.strip()
    if "://" in host:
        problems.append(f"{host_from}: must be a host name or address, not a URL "
                        "(put a URL in redis_url or REDIS_URL)")
    elif not _plain_host(host):
        problems.append(f"{host_from}: must be a host name or address without a port or "
                        "path (the port goes in redis_port or REDIS_PORT; an IPv6 address is "
                        "written in brackets, [::1])")
    return problems


def _plain_host(host: str) -> bool:
    """Whether `redis://{host}:6379/0` (the URL the engine builds) reads back as this host."""
    try:
        parts = urlsplit(f"redis://{host}:6379/0")
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return False
    return bool(hostname) and port == 6379 and parts.path == "/0" and not parts.username and (
        hostname == host.strip("[]").lower())


def _url_problems(url: str, where: str) -> list[str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        what = "a port that is not a number from 1 to 65535" if "port" in str(exc).lower() else (
            "something that cannot be read as a URL")
        return [f"{where}: has {what} (expected redis://[:password@]host:port/db)"]
    if "://" not in url:
        return [f"{where}: must be a URL such as redis://host:6379 (rediss:// for TLS)"]
    if parts.scheme not in _SCHEMES:
        shown = f"'{parts.scheme}'" if parts.scheme.isalnum() else "another scheme"
        return [f"{where}: must start with redis:// or rediss:// (TLS), not {shown}"]
    if port == 0:
        return [f"{where}: has a port that is not a number from 1 to 65535"]
    db = parts.path.lstrip("/")
    query_db = parse_qs(parts.query).get("db", [""])[-1]
    if (db and not db.isdigit()) or (not db and query_db and not query_db.isdigit()):
        return [f"{where}: the database (after the last /) must be a number"]
    return []
