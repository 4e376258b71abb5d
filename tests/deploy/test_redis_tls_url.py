"""The REDIS_URL that infra/gcp writes for Memorystore, used for real.

Memorystore's TLS certificate is signed by a CA private to the instance and the URL addresses the
instance by IP, so the module's URL carries the AUTH string, `ssl_ca_certs=` (the CA mounted from
Secret Manager) and `ssl_check_hostname=false`. Here a real redis-server speaks TLS with such a
certificate (a private CA, no name matching 127.0.0.1) and requires a password; laneway, started
by the image's entry command, must keep its lanes there.
"""

from __future__ import annotations

import datetime
import re
import shutil
import sys
from pathlib import Path

import openai
import pytest

from tests.support.procs import free_port, spawn, stop, wait_http, wait_port

REPO = Path(__file__).resolve().parents[2]
AUTH = "memorystore-auth-string-0123456789"


def url_format_from_module() -> str:
    """The format() template of google_secret_manager_secret_version.redis_url, as written."""
    text = (REPO / "infra" / "gcp" / "redis.tf").read_text()
    match = re.search(r'secret_data = format\(\s*"([^"]+)"', text)
    assert match, "redis.tf no longer builds the URL with format()"
    return match[1]


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for a name that is not the address dialled."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Instance CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis-server")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("redis.invalid")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "server.pem", "server.key"))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def test_memorystore_style_url_carries_laneway_state_over_tls(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    ca, cert, key = write_certificates(tmp_path)
    tls_port = free_port()
    server = spawn([binary, "--port", "0", "--tls-port", str(tls_port), "--bind", "127.0.0.1",
                    "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                    "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
                    "--requirepass", AUTH, "--save", "", "--appendonly", "no",
                    "--dir", str(tmp_path)])
    laneway = None
    try:
        wait_port(tls_port, server)
        # The module's template, filled as Terraform fills it (CA directory moved to tmp).
        url = url_format_from_module().replace("%s", AUTH, 1).replace("%s", "127.0.0.1", 1)
        url = url.replace("%d", str(tls_port), 1).replace("%s", str(tmp_path), 1)
        assert "%" not in url, url

        import redis

        probe = redis.Redis.from_url(url)
        assert probe.ping()
        wrong = redis.Redis.from_url(url.replace("ssl_check_hostname=false",
                                                 "ssl_check_hostname=true"))
        with pytest.raises(redis.exceptions.ConnectionError):
            wrong.ping()  # proves the name check is what the flag turns off, nothing else
        wrong.close()

        port = free_port()
        executable = shutil.which("laneway") or str(Path(sys.executable).with_name("laneway"))
        laneway = spawn([executable], env={
            "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": url,
            "CONFIG_FILE_PATH": str(REPO / "examples" / "config.yaml"),
            "LANEWAY_MASTER_KEY": "sk-tls-test"}, cwd=tmp_path)
        wait_http(f"http://127.0.0.1:{port}/health/readiness", laneway, timeout=30)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-tls-test",
                               max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        client.close()
        assert (reply.choices[0].message.content or "").startswith("Hello from laneway")
        assert probe.dbsize() > 0, "laneway's lanes and counters should live in Redis"
        probe.close()
    finally:
        output = stop(laneway) if laneway is not None else ""
        stop(server)
    assert AUTH not in output, "the Redis password must not be logged"
