"""Where the config comes from (a file, S3 or GCS) and reading its bytes.

boto3 is imported only when an s3:// config is actually read (it costs a few hundred
milliseconds of cold start that file and GCS users should not pay), httpx only for gs://.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from router.errors import ConfigError

_HOW_TO = (
    "no config given: pass a path or s3://bucket/key or gs://bucket/key, or set CONFIG_FILE_PATH, "
    "LANEWAY_CONFIG, or LITELLM_CONFIG_BUCKET_TYPE (s3|gcs) with LITELLM_CONFIG_BUCKET_NAME and "
    "LITELLM_CONFIG_BUCKET_OBJECT_KEY"
)
_BUCKET_SCHEMES = {"s3": "s3", "gcs": "gs"}
_METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
_TIMEOUT_SECONDS = 10.0


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


def fetch(location: str, environ: Mapping[str, str]) -> bytes:
    """The raw bytes of the config at `location` (as returned by `locate`)."""
    for scheme, reader in (("s3://", _read_s3), ("gs://", _read_gcs)):
        if location.startswith(scheme):
            bucket, _, key = location[len(scheme) :].partition("/")
            if not bucket or not key:
                raise ConfigError(f"config location {location} must look like {scheme}bucket/key")
            return reader(bucket, key, environ)
    return _read_file(location)


def _read_file(location: str) -> bytes:
    path = Path(location).expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {location} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {location} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {location}: {exc.strerror}") from None


def _read_s3(bucket: str, key: str, environ: Mapping[str, str]) -> bytes:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    uri = f"s3://{bucket}/{key}"
    endpoint = environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    # Credentials come from the environ we were given; unset ones fall back to boto3's own
    # chain (instance role, ~/.aws, ...).
    session = boto3.session.Session(
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=environ.get("AWS_SESSION_TOKEN"),
        region_name=region,
    )
    client = session.client(
        "s3",
        endpoint_url=endpoint,
        config=BotoConfig(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2}),
    )
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
            detail = "no such bucket" if code == "NoSuchBucket" else "no such key"
            raise ConfigError(f"config object {uri} not found ({detail})") from None
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise ConfigError(f"access denied reading config object {uri} ({code})") from None
        raise ConfigError(f"cannot read config object {uri}: S3 answered {code}") from None
    except NoCredentialsError:
        raise ConfigError(f"cannot read config object {uri}: no AWS credentials found") from None
    except BotoCoreError as exc:
        raise ConfigError(f"cannot reach S3 to read config object {uri}: {exc}") from None
    finally:
        client.close()


def _read_gcs(bucket: str, key: str, environ: Mapping[str, str]) -> bytes:
    import httpx

    uri = f"gs://{bucket}/{key}"
    emulator = environ.get("STORAGE_EMULATOR_HOST", "").strip()
    headers: dict[str, str] = {}
    if emulator:
        base = emulator if "://" in emulator else f"http://{emulator}"
    else:
        base = "https://storage.googleapis.com"
        headers["Authorization"] = f"Bearer {_gcs_token(environ, uri)}"
    url = f"{base.rstrip('/')}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}"
    try:
        response = httpx.get(
            url, params={"alt": "media"}, headers=headers, timeout=_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        raise ConfigError(f"cannot reach GCS to read config object {uri}: {exc}") from None
    if response.status_code == 404:
        raise ConfigError(f"config object {uri} not found")
    if response.status_code in (401, 403):
        raise ConfigError(f"access denied reading config object {uri} ({response.status_code})")
    if response.status_code != 200:
        raise ConfigError(f"cannot read config object {uri}: GCS answered {response.status_code}")
    return response.content


def _gcs_token(environ: Mapping[str, str], uri: str) -> str:
    """An access token for the instance's service account, from the metadata server."""
    import httpx

    # GCE_METADATA_HOST is the standard override Google's own clients honour.
    host = environ.get("GCE_METADATA_HOST", "").strip() or "metadata.google.internal"
    url = f"http://{host}{_METADATA_TOKEN_PATH}"
    failure = (
        f"cannot read config object {uri}: no access token from the GCP metadata server "
        "(outside Google Cloud, set STORAGE_EMULATOR_HOST or copy the config to a file)"
    )
    try:
        response = httpx.get(url, headers={"Metadata-Flavor": "Google"}, timeout=_TIMEOUT_SECONDS)
        body: Any = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        raise ConfigError(failure) from None
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise ConfigError(failure)
    return token
