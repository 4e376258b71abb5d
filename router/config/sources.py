"""Where the config comes from (a file, S3 or GCS), reading its bytes, and its version.

S3 and GCS are read over laneway's own lean HTTP client (a SigV4-signed GET, the GCS JSON API),
so a bucket config imports neither boto3 nor httpx at cold start. botocore is imported only to
find credentials laneway does not read itself (profiles, SSO; see router/aws/credentials.py).

Every document read is kept as a `Fetched` with its version tag (S3 ETag, GCS generation, a
file's mtime and size) and a digest, so a reload check can ask "changed?" cheaply.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from router.errors import ConfigError
from router.httpclient.oneshot import SyncClient

if TYPE_CHECKING:
    from router.httpclient import UpstreamClient

T = TypeVar("T")

_HOW_TO = (
    "no config given: pass a path or s3://bucket/key or gs://bucket/key, or set CONFIG_FILE_PATH, "
    "LANEWAY_CONFIG, or LITELLM_CONFIG_BUCKET_TYPE (s3|gcs) with LITELLM_CONFIG_BUCKET_NAME and "
    "LITELLM_CONFIG_BUCKET_OBJECT_KEY"
)
_BUCKET_SCHEMES = {"s3": "s3", "gcs": "gs"}


@dataclass(frozen=True, slots=True)
class Fetched:
    """One document as read: where, its bytes, its version tag and their SHA-256."""

    location: str
    body: bytes
    tag: str | None
    digest: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a loaded config came from: enough to check later whether it changed."""

    location: str
    environ: Mapping[str, str]
    files: tuple[Fetched, ...]


def locate(source: str | None, environ: Mapping[str, str]) -> str:
    """The path or URI to read: the explicit source, else the first environment setting given."""
    for candidate in (source, environ.get("CONFIG_FILE_PATH"), environ.get("LANEWAY_CONFIG")):
        if candidate and candidate.strip():
            return candidate.strip()
    bucket = environ.get("LITELLM_CONFIG_BUCKET_NAME", "").strip()
    key = environ.get("LITELLM_CONFIG_BUCKET_OBJECT_KEY", "").strip()
    kind = environ.get("LITELLM_CONFIG_BUCKET_TYPE", "").strip().lower()
    if not (bucket or key or kind):
        raise ConfigError(_HOW_TO)
    if not bucket or not key:
        raise ConfigError(
            "LITELLM_CONFIG_BUCKET_NAME and LITELLM_CONFIG_BUCKET_OBJECT_KEY must both be set "
            "to read the config from a bucket"
        )
    # Like LiteLLM, a bucket without a type is an S3 bucket.
    scheme = _BUCKET_SCHEMES.get(kind or "s3")
    if scheme is None:
        raise ConfigError(f"LITELLM_CONFIG_BUCKET_TYPE must be 's3' or 'gcs', not '{kind}'")
    return f"{scheme}://{bucket}/{key.lstrip('/')}"


class Reader:
    """Reads config documents; bucket reads share one private client (and its connections)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self._http: SyncClient | None = None

    def read(self, location: str) -> Fetched:
        bucket = _split(location)
        if bucket is None:
            return _read_file(location)
        scheme, name, key = bucket
        if scheme == "s3://":
            from router.config.s3 import get_object

            found = self._run(lambda c: get_object(c, name, key, self.environ))
            assert found is not None  # no ETag given: never "not modified"
            body, tag = found
        else:
            from router.config.gcs import get_object as get_gcs

            body, tag = self._run(lambda c: get_gcs(c, name, key, self.environ))
        return _fetched(location, body, tag)

    def refetch(self, last: Fetched) -> Fetched | None:
        """The document again, or None when its version tag says it has not changed."""
        bucket = _split(last.location)
        if bucket is None:
            tag = _file_tag(last.location)
            return None if tag is not None and tag == last.tag else _read_file(last.location)
        scheme, name, key = bucket
        if scheme == "s3://":
            from router.config.s3 import get_object

            found = self._run(lambda c: get_object(c, name, key, self.environ, last.tag))
            return None if found is None else _fetched(last.location, *found)
        from router.config.gcs import generation

        current = self._run(lambda c: generation(c, name, key, self.environ))
        if current is not None and current == last.tag:
            return None
        fresh = self.read(last.location)
        return fresh if fresh.tag is not None else _fetched(fresh.location, fresh.body, current)

    def _run(self, work: Callable[[UpstreamClient], Coroutine[Any, Any, T]]) -> T:
        if self._http is None:
            self._http = SyncClient()
        return self._http.run(work)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _split(location: str) -> tuple[str, str, str] | None:
    for scheme in ("s3://", "gs://"):
        if location.startswith(scheme):
            bucket, _, key = location[len(scheme):].partition("/")
            if not bucket or not key:
                raise ConfigError(f"config location {location} must look like {scheme}bucket/key")
            return scheme, bucket, key
    return None


def _fetched(location: str, body: bytes, tag: str | None) -> Fetched:
    return Fetched(location, body, tag, hashlib.sha256(body).hexdigest())


def _file_tag(location: str) -> str | None:
    try:
        st = Path(location).expanduser().stat()
    except OSError:
        return None
    return f"{st.st_mtime_ns}:{st.st_size}"


def _read_file(location: str) -> Fetched:
    path = Path(location).expanduser()
    tag = _file_tag(location)  # before reading: a write in between is seen by the next check
    try:
        return _fetched(location, path.read_bytes(), tag)
    except FileNotFoundError:
        raise ConfigError(f"config file {location} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {location} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {location}: {exc.strerror}") from None
