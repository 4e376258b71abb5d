"""rediss:// (TLS), as ElastiCache and Memorystore need, against a real TLS redis-server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import start_gateway
from tests.support.procs import free_port, spawn, stop, wait_port


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_gateway_uses_redis_over_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    server = spawn(["redis-server", "--port", "0", "--tls-port", str(port), "--bind",
                    "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                    "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--save", "",
                    "--appendonly", "no", "--dir", str(tmp_path)])
    try:
        wait_port(port, server)
        config = {"model_list": [{"model_name": "m", "litellm_params": {
            "model": "gpt-4o", "mock_response": "over tls"}}]}
        gw = start_gateway(config, {"REDIS_URL": f"rediss://127.0.0.1:{port}/0",
                                    "SSL_CERT_FILE": str(cert)})
        try:
            assert httpx.get(f"{gw.url}/health/readiness").json() == {
                "status": "healthy", "state": "redis"}
            r = httpx.post(f"{gw.url}/v1/chat/completions",
                           json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
            assert r.json()["choices"][0]["message"]["content"] == "over tls"
        finally:
            gw.stop()
    finally:
        stop(server)
