"""Loopback fakes of three secret managers' REST APIs, each a real HTTP server on 127.0.0.1 (a
thread in the test process) that checks credentials the way the real service does and answers
in its format. AWS Secrets Manager is moto's real server instead (tests/config/conftest.py).

    with FakeVault(token="root") as vault:      # HashiCorp Vault KV v2 (token or AppRole)
        vault.secrets["UPSTREAM_KEY"] = "sk-..."
        ...                                     # VAULT_ADDR=vault.url, VAULT_TOKEN=root
    FakeGoogleSecretManager()                   # metadata-server token + Secret Manager API
    FakeAzureKeyVault()                         # Entra ID / managed identity / IMDS + Key Vault

`secrets` may be changed while the server runs (a rotation); `reads` counts secret reads,
`denied` requests refused for their credentials; `status` makes every secret read fail with it.
"""

from __future__ import annotations

import base64
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

Reply = tuple[int, Any]


class _Server(ThreadingHTTPServer):
    # A batch opens one connection per secret at once; the default backlog of 5 would make
    # the kernel drop the rest and the client's SYN retry a second later.
    request_queue_size = 128
    daemon_threads = True


class FakeSecretServer:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.reads = 0
        self.denied = 0
        self.status: int | None = None
        self.seen_headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def hostport(self) -> str:
        return self.url.removeprefix("http://")

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Reply:
        raise NotImplementedError

    def deny(self) -> Reply:
        with self._lock:
            self.denied += 1
        return 403, {"errors": ["permission denied"]}

    def read(self, name: str) -> str | None:
        with self._lock:
            self.reads += 1
        return self.secrets.get(name)

    def start(self) -> FakeSecretServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm holds
            # the body back for the client's delayed ACK (~40 ms) on a kept-alive connection.
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.seen_headers.append(headers)
                status, payload = fake.handle(self.command, unquote(parts.path), query,
                                              headers, body)
                data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FakeVault(FakeSecretServer):
    """Vault KV v2 at /v1/{mount}/data/{path}, values under `key`; a static token and/or an
    AppRole (role_id, secret_id) whose login hands out its own token."""

    def __init__(self, token: str | None = None, approle: tuple[str, str] | None = None,
                 namespace: str | None = None, mount: str = "secret") -> None:
        super().__init__()
        self.tokens = {token} if token else set()
        self.approle = approle
        self.namespace = namespace
        self.mount = mount
        self.logins = 0

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Reply:
        if self.namespace is not None and headers.get("x-vault-namespace") != self.namespace:
            return self.deny()
        if method == "POST" and path == "/v1/auth/approle/login":
            doc = orjson.loads(body or b"{}")
            if self.approle is None or (doc.get("role_id"), doc.get("secret_id")) != (
                    self.approle):
                return 400, {"errors": ["invalid role or secret ID"]}
            self.logins += 1
            issued = f"hvs.approle-{self.logins}"
            self.tokens.add(issued)
            return 200, {"auth": {"client_token": issued, "lease_duration": 3600}}
        prefix = f"/v1/{self.mount}/data/"
        if method == "GET" and path.startswith(prefix):
            if headers.get("x-vault-token") not in self.tokens:
                return self.deny()
            if self.status is not None:
                return self.status, {"errors": ["injected failure"]}
            value = self.read(path.removeprefix(prefix))
            if value is None:
                return 404, {"errors": []}
            return 200, {"data": {"data": {"key": value}, "metadata": {"version": 1}}}
        return 404, {"errors": ["no handler for route"]}


class FakeGoogleSecretManager(FakeSecretServer):
    """The metadata server's token and project id, and Secret Manager's versions/latest:access,
    on one address (GCE_METADATA_HOST = hostport, api_base = url)."""

    TOKEN = "ya29.fake-metadata-token"

    def __init__(self, project: str = "fake-project") -> None:
        super().__init__()
        self.project = project
        self.token_requests = 0

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Reply:
        if path.startswith("/computeMetadata/"):
            if headers.get("metadata-flavor") != "Google":
                return self.deny()
            if path.endswith("/service-accounts/default/token"):
                self.token_requests += 1
                return 200, {"access_token": self.TOKEN, "expires_in": 3599,
                             "token_type": "Bearer"}
            if path.endswith("/project/project-id"):
                return 200, self.project.encode()
            return 404, {}
        start = f"/v1/projects/{self.project}/secrets/"
        if method == "GET" and path.startswith(start) and path.endswith("/versions/latest:access"):
            if headers.get("authorization") != f"Bearer {self.TOKEN}":
                return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
            if self.status is not None:
                return self.status, {"error": {"code": self.status}}
            name = path.removeprefix(start).removesuffix("/versions/latest:access")
            value = self.read(name)
            if value is None:
                return 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
            return 200, {"name": f"{start[1:]}{name}/versions/1",
                         "payload": {"data": base64.b64encode(value.encode()).decode()}}
        return 404, {"error": {"code": 404}}


class FakeAzureKeyVault(FakeSecretServer):
    """Key Vault's GET /secrets/{name}?api-version=7.4 behind a bearer token, and the three
    token sources: Entra ID client credentials (POST /{tenant}/oauth2/v2.0/token), the App
    Service managed identity endpoint (GET /msi/token with X-IDENTITY-HEADER), and IMDS (GET
    /metadata/identity/oauth2/token with Metadata: true)."""

    def __init__(self, tenant: str = "fake-tenant", client: tuple[str, str] | None = None,
                 identity_header: str | None = None) -> None:
        super().__init__()
        self.tenant = tenant
        self.client = client
        self.identity_header = identity_header
        self.issued: set[str] = set()
        self.token_sources: list[str] = []

    def _token(self, source: str) -> dict[str, Any]:
        token = f"eyJ.fake-{source}-{len(self.issued)}"
        self.issued.add(token)
        self.token_sources.append(source)
        return {"access_token": token, "token_type": "Bearer", "expires_in": 3599}

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> Reply:
        if method == "POST" and path == f"/{self.tenant}/oauth2/v2.0/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            if (self.client is None or form.get("grant_type") != "client_credentials"
                    or (form.get("client_id"), form.get("client_secret")) != self.client
                    or form.get("scope") != "https://vault.azure.net/.default"):
                return 401, {"error": "invalid_client"}
            return 200, self._token("client")
        if path == "/msi/token":
            if (self.identity_header is None
                    or headers.get("x-identity-header") != self.identity_header
                    or query.get("resource") != "https://vault.azure.net"):
                return self.deny()
            doc = self._token("identity")
            del doc["expires_in"]
            doc["expires_on"] = str(int(time.time()) + 3600)
            return 200, doc
        if path == "/metadata/identity/oauth2/token":
            if headers.get("metadata") != "true":
                return 400, {"error": "invalid_request"}
            return 200, self._token("imds")
        if method == "GET" and path.startswith("/secrets/"):
            if query.get("api-version") != "7.4":
                return 400, {"error": {"code": "MissingApiVersionParameter"}}
            auth = headers.get("authorization", "")
            if auth.removeprefix("Bearer ") not in self.issued:
                return 401, {"error": {"code": "Unauthorized"}}
            if self.status is not None:
                return self.status, {"error": {"code": "Injected"}}
            name = path.removeprefix("/secrets/")
            value = self.read(name)
            if value is None:
                return 404, {"error": {"code": "SecretNotFound",
                                       "message": f"A secret with (name/id) {name} was not "
                                                  "found in this key vault."}}
            return 200, {"value": value, "id": f"{self.url}/secrets/{name}/1",
                         "attributes": {"enabled": True}}
        return 404, {"error": {"code": "NotFound"}}
