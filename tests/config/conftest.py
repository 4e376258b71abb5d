"""Real object stores for the config tests: moto's S3 server in a thread, the GCS emulator as a
process. Both start once per session and only when a test asks for them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.procs import PYTHON, free_port, spawn, stop, wait_http

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "config"

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def fixture_path() -> Path:
    return FIXTURES


@dataclass
class S3Store:
    endpoint: str

    def environ(self, **extra: str) -> dict[str, str]:
        return {**FAKE_AWS, "AWS_ENDPOINT_URL_S3": self.endpoint, **extra}

    def put(self, bucket: str, key: str, body: bytes) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        try:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            if bucket not in existing:
                client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key=key, Body=body)
        finally:
            client.close()


@pytest.fixture(scope="session")
def s3_store() -> Iterator[S3Store]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Store(endpoint=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@dataclass
class GcsStore:
    host: str  # host:port, as STORAGE_EMULATOR_HOST is usually written

    def put(self, bucket: str, key: str, body: bytes) -> None:
        base = f"http://{self.host}"
        created = httpx.post(f"{base}/storage/v1/b", params={"project": "test"},
                             json={"name": bucket})
        assert created.status_code in (200, 409), created.text
        uploaded = httpx.post(f"{base}/upload/storage/v1/b/{bucket}/o",
                              params={"uploadType": "media", "name": key}, content=body)
        assert uploaded.status_code == 200, uploaded.text


@pytest.fixture(scope="session")
def gcs_store() -> Iterator[GcsStore]:
    port = free_port()
    script = Path(PYTHON).with_name("gcp-storage-emulator")
    command = [str(script)] if script.exists() else [PYTHON, "-m", "gcp_storage_emulator"]
    proc = spawn([*command, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                  "--quiet"])
    try:
        wait_http(f"http://127.0.0.1:{port}/storage/v1/b", proc)
        yield GcsStore(host=f"127.0.0.1:{port}")
    finally:
        stop(proc)
