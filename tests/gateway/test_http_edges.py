"""The edges of the HTTP face, against a real gateway process at its most verbose logging:
body size cap, `n` cap, slow and silent clients, trailing slashes with a hostile Host, query
strings kept out of the logs, auth on every route but the public ones, malformed bodies,
header-safe model names, the log line of an internal error, and a bounded Retry-After."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from handler.app import create_app
from handler.auth import PUBLIC_PATHS
from router.config import load_config
from tests.gateway.rawhttp import (
    connect,
    exchange,
    read_response,
    request_head,
    seconds_until_closed,
)
from tests.support.fake_openai import FakeUpstream
from tests.support.gateway import Gateway, clean_env, start_gateway
from tests.support.procs import output

KEY = "sk-edge-master-0123456789abcdef"
CAP = 64 * 1024
READ_TIMEOUT = 1.0
CHAT = {"model": "mocked", "messages": [{"role": "user", "content": "hi"}]}


class _ListUpstream(BaseHTTPRequestHandler):
    """An upstream that answers every call 200 with a JSON array instead of an object."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"[]"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def odd_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ListUpstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gw(fake_openai: FakeUpstream, odd_upstream: str) -> Iterator[Gateway]:
    config = {
        "model_list": [
            {"model_name": "mocked", "litellm_params": {
                "model": "gpt-4o-mini", "mock_response": "ok"}},
            {"model_name": "odd", "litellm_params": {
                "model": "openai/odd", "api_base": odd_upstream, "api_key": "x"}},
            {"model_name": "openai/*", "litellm_params": {
                "model": "openai/*", "api_base": fake_openai.url, "api_key": "x"}},
            *({"model_name": name, "litellm_params": {"model": "gpt-4o", "mock_response": "ok"}}
              for name in ("modèle-ü", "模型", "a\tb")),
        ],
        # The Retry-After tests' 429s cool the one `openai/*` deployment: only for a moment.
        "router_settings": {"num_retries": 0, "max_cooldown_seconds": 0.01},
        "general_settings": {"master_key": KEY, "max_request_body_bytes": CAP,
                             "request_read_timeout": READ_TIMEOUT},
    }
    gateway = start_gateway(config, clean_env(), key=KEY, args=("--detailed_debug",))
    yield gateway
    gateway.stop()


def auth() -> dict[str, str]:
    return {"authorization": f"Bearer {KEY}"}


def assert_openai_error(body: Any, status_type: str | None = None) -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    if status_type:
        assert err["type"] == status_type
    return dict(err)


def request_lines(text: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(x) for x in text.splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("logger") == "laneway.request" and x["level"] == "INFO"]


# -- 1. the body size cap ------------------------------------------------------------------

def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_sent(gw: Gateway) -> None:
    with connect(gw.port) as sock:
        sock.sendall(request_head("POST", "/v1/chat/completions", {
            "host": "x", **auth(), "content-type": "application/json",
            "content-length": str(CAP + 1)}))
        resp = read_response(sock)  # nothing of the body was sent
        assert resp.status == 413
        assert resp.headers["connection"] == "close"
        assert assert_openai_error(resp.json())["code"] == "request_too_large"
        assert seconds_until_closed(sock, 3) < 3


@pytest.mark.parametrize("lying_length", [None, "10"], ids=["chunked", "chunked-lying-length"])
def test_a_chunked_upload_is_cut_off_at_the_cap(gw: Gateway, lying_length: str | None) -> None:
    head = {"host": "x", **auth(), "content-type": "application/json",
            "transfer-encoding": "chunked"}
    if lying_length:
        head["content-length"] = lying_length
    piece = b"[" * 8192
    sent = 0
    with connect(gw.port) as sock:
        sock.sendall(request_head("POST", "/v1/chat/completions", head))
        sock.settimeout(0.05)
        answer = b""
        # Keep sending until the gateway answers; a gateway buffering everything never would.
        while sent < 40 * CAP and not answer:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(5)
        while b"\r\n\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    if lying_length and answer.startswith(b"HTTP/1.1 400"):
        return  # refusing Content-Length with Transfer-Encoding outright is as good
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 4 * CAP  # refused soon after the cap, not after the whole upload


def test_a_body_just_under_the_cap_is_read(gw: Gateway) -> None:
    pad = "x" * (CAP - 200)
    body = {**CHAT, "user": pad}
    r = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=auth())
    assert r.status_code == 200, r.text


def test_the_cap_holds_under_mangum(tmp_path: Any) -> None:
    """handler.aws_lambda in a real process, fed Function URL events (the body is in memory)."""
    import subprocess
    import sys

    from tests.deploy import events

    cfg = tmp_path / "config.yaml"
    cfg.write_text(orjson.dumps({
        "model_list": [{"model_name": "mocked", "litellm_params": {
            "model": "gpt-4o-mini", "mock_response": "ok"}}],
        "general_settings": {"max_request_body_bytes": CAP}}).decode())
    small = orjson.dumps(CHAT)
    big = orjson.dumps({**CHAT, "user": "x" * (CAP + 1)})
    evs = [events.function_url("POST", "/v1/chat/completions", body=b, as_base64=b64,
                               headers={"content-type": "application/json"})
           for b, b64 in ((small, False), (big, False), (big, True))]
    script = ("import json, sys\nfrom handler.aws_lambda import handler\n"
              "for line in sys.stdin:\n"
              "    r = handler(json.loads(line), None)\n"
              "    print('RESULT', json.dumps([r['statusCode'], r['body']]), flush=True)\n")
    env = {**clean_env(), "CONFIG_FILE_PATH": str(cfg), "LANEWAY_LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60,
                          input="\n".join(orjson.dumps(e).decode() for e in evs) + "\n",
                          capture_output=True, text=True)
    results = [orjson.loads(x[len("RESULT "):]) for x in done.stdout.splitlines()
               if x.startswith("RESULT ")]
    assert [r[0] for r in results] == [200, 413, 413], done.stderr[-2000:]
    assert assert_openai_error(orjson.loads(results[1][1]))["code"] == "request_too_large"


# -- 2. n ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n", ["2", 2.5, True, [], {}, 0, -1, 129, 10**30])
@pytest.mark.parametrize("path,base", [
    ("/v1/chat/completions", CHAT),
    ("/v1/completions", {"model": "mocked", "prompt": "hi"}),
])
def test_n_must_be_an_integer_from_1_to_128(gw: Gateway, path: str, base: dict[str, Any],
                                            n: Any) -> None:
    r = httpx.post(f"{gw.url}{path}", json={**base, "n": n}, headers=auth())
    assert r.status_code == 400, r.text
    assert assert_openai_error(r.json(), "invalid_request_error")["param"] == "n"


@pytest.mark.parametrize("n", [1, 128, None])
def test_n_within_bounds_is_served(gw: Gateway, n: int | None) -> None:
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "n": n}, headers=auth())
    assert r.status_code == 200, r.text


# -- 3. silent and slow clients ------------------------------------------------------------

BOUND = READ_TIMEOUT + 2.0


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/comp", b"GET /health HTTP/1.1\r\nho"],
                         ids=["nothing", "half-a-request-line", "half-the-headers"])
def test_a_connection_that_never_completes_its_headers_is_closed(gw: Gateway,
                                                                 sent: bytes) -> None:
    with connect(gw.port) as sock:
        if sent:
            sock.sendall(sent)
        assert seconds_until_closed(sock, BOUND + 3) < BOUND


def test_an_idle_keep_alive_connection_that_starts_a_request_and_stalls_is_closed(
        gw: Gateway) -> None:
    with connect(gw.port) as sock:
        sock.sendall(request_head("GET", "/health/liveliness", {"host": "x"}))
        assert read_response(sock).status == 200
        sock.sendall(b"GET /health/liv")  # uvicorn's own keep-alive timer stops here
        assert seconds_until_closed(sock, BOUND + 3) < BOUND


def test_endless_headers_are_cut_off(gw: Gateway) -> None:
    with connect(gw.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(b"GET /health/liveliness HTTP/1.1\r\nhost: x\r\n")
        sent = 0
        try:
            # A gateway that kept every header would take all of this within a second.
            while sent < 32 * 1024 * 1024:
                sock.sendall(b"x-filler: " + b"y" * 1000 + b"\r\n")
                sent += 1012
        except (BrokenPipeError, ConnectionResetError):
            pass
        # Cut off after 64 KiB; what the kernels buffered on either side makes up the rest.
        assert sent < 8 * 1024 * 1024, "the gateway kept reading headers"
        assert seconds_until_closed(sock, 3) < 3


def test_headers_of_a_normal_size_are_fine(gw: Gateway) -> None:
    big = {f"x-h{i}": "v" * 1000 for i in range(30)}  # 30 KiB of headers
    assert httpx.get(f"{gw.url}/health/liveliness", headers=big).status_code == 200


def test_a_body_that_stops_arriving_gets_408(gw: Gateway) -> None:
    with connect(gw.port) as sock:
        sock.sendall(request_head("POST", "/v1/chat/completions", {
            "host": "x", **auth(), "content-type": "application/json",
            "content-length": "500"}) + b'{"model": "mocked"')
        started = time.monotonic()
        resp = read_response(sock)
        assert time.monotonic() - started < BOUND
        assert resp.status == 408
        assert_openai_error(resp.json(), "timeout")


# -- 5. trailing slashes -------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/chat/completions/", "/v1/models/", "/health/"])
@pytest.mark.parametrize("with_key", [True, False])
def test_a_trailing_slash_never_redirects_to_the_clients_host(gw: Gateway, path: str,
                                                              with_key: bool) -> None:
    head = {"host": "evil.example", "content-type": "application/json",
            "content-length": "2", **(auth() if with_key else {})}
    resp = exchange(gw.port, request_head("POST" if "chat" in path else "GET", path, head)
                    + b"{}")
    assert resp.status == (404 if with_key else 401)
    assert "location" not in resp.headers
    assert_openai_error(resp.json())


# -- 6. query strings never reach a log line -----------------------------------------------

def test_a_key_in_the_query_string_never_shows_in_the_output(gw: Gateway) -> None:
    leak = f"?api_key={KEY}&key={KEY}"
    with httpx.Client(base_url=gw.url) as c:
        statuses = [
            c.get(f"/v1/models{leak}").status_code,
            c.get(f"/v1/models{leak}", headers=auth()).status_code,
            c.get(f"/health/liveliness{leak}").status_code,
            c.get(f"/no/such/route{leak}", headers=auth()).status_code,
            c.post(f"/v1/chat/completions{leak}", json=CHAT, headers=auth()).status_code,
            c.post(f"/v1/chat/completions{leak}", content=b"{", headers=auth()).status_code,
        ]
    assert statuses == [401, 200, 200, 404, 200, 400]
    time.sleep(0.2)  # the access log line of the last request
    text = output(gw.proc)
    assert '"GET /v1/models?… HTTP/1.1" 200' in text  # the access log is really on
    assert KEY not in text


# -- 7. auth in one place ------------------------------------------------------------------

def test_every_route_but_the_public_ones_needs_the_key(gw: Gateway) -> None:
    app = create_app(load_config(str(gw.config_path)))
    checked = 0
    with httpx.Client(base_url=gw.url) as c:
        for route in app.routes:
            path = re.sub(r"\{[^}]+\}", "some-model", route.path)  # type: ignore[attr-defined]
            for method in sorted(route.methods or ()):  # type: ignore[attr-defined]
                status = c.request(method, path).status_code
                if route.path in PUBLIC_PATHS:  # type: ignore[attr-defined]
                    assert status != 401, (method, path)
                else:
                    assert status == 401, (method, path, status)
                    checked += 1
    assert checked >= 24  # the inference, info, metrics and queue routes were all walked
    for path in ("/no/such/route", "/v1/chat/completions/"):
        assert httpx.get(f"{gw.url}{path}").status_code == 401


def test_public_paths_answer_without_a_key(gw: Gateway) -> None:
    for path in ("/health/liveliness", "/health/liveness", "/health/readiness",
                 "/docs", "/redoc", "/openapi.json"):
        assert httpx.get(f"{gw.url}{path}").status_code == 200, path


# -- 8. malformed input is a 400 -----------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"model": "mocked", "messages": "hi"},
    {"model": "mocked", "messages": {"role": "user"}},
    {"model": "mocked", "messages": [1, 2]},
    {"model": "mocked", "messages": [{"role": "user", "content": 5}]},
    {"model": "mocked", "messages": [{"role": "user", "content": [1]}]},
    {"model": "mocked", "messages": [{"role": "assistant", "tool_calls": [{"function": "f"}]}]},
    {"model": "mocked", "messages": [{"role": "user", "content": "x"}], "tools": {"a": 1}},
    {"model": "mocked", "prompt": [1, "a"]},
    {"model": "mocked", "prompt": 5},
    {"model": "mocked"},
    {"model": 5, "messages": [{"role": "user", "content": "x"}]},
], ids=lambda b: orjson.dumps(b).decode()[:60])
def test_token_counter_rejects_malformed_bodies(gw: Gateway, body: dict[str, Any]) -> None:
    r = httpx.post(f"{gw.url}/utils/token_counter", json=body, headers=auth())
    assert r.status_code == 400, r.text
    assert_openai_error(r.json(), "invalid_request_error")


def test_token_counter_still_counts(gw: Gateway) -> None:
    for body in ({"model": "mocked", "messages": [{"role": "user", "content": "hello"}]},
                 {"model": "mocked", "prompt": ["hello", "world"]},
                 {"model": "mocked", "prompt": [1, 2, 3]}):
        r = httpx.post(f"{gw.url}/utils/token_counter", json=body, headers=auth())
        assert r.status_code == 200 and r.json()["total_tokens"] > 0, r.text


@pytest.mark.parametrize("body", [
    {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}],
     "max_tokens": "lots"},
    {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": 5}]},
    {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": "yes"},
    {"model": ["openai/gpt-4o"], "messages": [{"role": "user", "content": "x"}]},
    {"model": "openai/gpt-4o", "prompt": {"a": 1}},
], ids=lambda b: orjson.dumps(b).decode()[:60])
def test_inference_routes_reject_malformed_bodies(gw: Gateway, body: dict[str, Any]) -> None:
    path = "/v1/completions" if "prompt" in body else "/v1/chat/completions"
    r = httpx.post(f"{gw.url}{path}", json=body, headers=auth())
    assert r.status_code == 400, r.text
    assert_openai_error(r.json(), "invalid_request_error")


def test_an_embeddings_input_longer_than_openais_bound_is_a_400(gw: Gateway) -> None:
    r = httpx.post(f"{gw.url}/v1/embeddings", headers=auth(),
                   json={"model": "openai/text-embedding-3-small", "input": ["x"] * 2049})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input", r.text
    assert_openai_error(r.json(), "invalid_request_error")


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/utils/token_counter"])
def test_json_nested_deeper_than_can_be_encoded_is_a_400(gw: Gateway, route: str) -> None:
    deep = b"[" * 300 + b"]" * 300
    raw = (b'{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": '
           + deep + b"}]}")
    r = httpx.post(f"{gw.url}{route}", content=raw, headers=auth())
    assert r.status_code == 400, r.text
    assert "nests deeper" in assert_openai_error(r.json())["message"]


@pytest.mark.parametrize("model,header", [
    ("modèle-ü", "mod%C3%A8le-%C3%BC"),
    ("模型", "%E6%A8%A1%E5%9E%8B"),
    ("a\tb", "a%09b"),
])
def test_non_ascii_model_names_are_percent_encoded_in_headers(gw: Gateway, model: str,
                                                              header: str) -> None:
    r = httpx.post(f"{gw.url}/v1/chat/completions", headers=auth(),
                   json={"model": model, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-laneway-model-group"] == header


# -- 9. an internal error still gets its log line ------------------------------------------

def test_an_internal_error_gets_its_request_line(gw: Gateway) -> None:
    r = httpx.post(f"{gw.url}/v1/chat/completions", headers={**auth(), "x-request-id": "edge-500"},
                   json={"model": "odd", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code >= 500
    assert_openai_error(r.json())
    assert r.headers["x-request-id"] == "edge-500"
    time.sleep(0.2)
    lines = [x for x in request_lines(output(gw.proc)) if x.get("request_id") == "edge-500"]
    assert len(lines) == 1, lines
    assert lines[0]["status"] == r.status_code


def test_every_refused_request_has_its_id_in_its_line(gw: Gateway) -> None:
    r = httpx.post(f"{gw.url}/utils/token_counter", content=b"{",
                   headers={**auth(), "x-request-id": "edge-bad-json"})
    assert r.status_code == 400 and r.headers["x-request-id"] == "edge-bad-json"
    time.sleep(0.2)
    lines = [x for x in request_lines(output(gw.proc)) if x.get("request_id") == "edge-bad-json"]
    assert [x["status"] for x in lines] == [400]


# -- 10. Retry-After -----------------------------------------------------------------------

@pytest.mark.parametrize("asked", ["inf", "nan", "1e300", "0", "86400"])
def test_retry_after_is_a_small_positive_integer(gw: Gateway, asked: str) -> None:
    r = httpx.post(f"{gw.url}/v1/chat/completions", headers=auth(), json={
        "model": f"openai/ra-{asked}+retry_after={asked}",
        "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 429, r.text
    assert_openai_error(r.json(), "rate_limit_error")
    value = r.headers["retry-after"]
    assert value.isdigit() and 1 <= int(value) <= 3600, value


def test_a_client_that_stops_reading_its_stream_lets_go_of_the_slot(
        fake_openai: FakeUpstream) -> None:
    """A streaming client that reads nothing once a long reply fills the socket buffers used
    to keep its slot until the request's timeout (the relay waited on it). After
    `request_read_timeout` without a write getting through it is let go as if it had
    disconnected: its upstream call ends and the one slot serves the next caller."""
    name = f"stuck-{time.monotonic_ns()}"
    config = {"model_list": [{"model_name": name, "litellm_params": {
        "model": f"openai/{name}+echo=1", "api_base": fake_openai.url, "api_key": "k",
        "max_parallel_requests": 1}}],
        "router_settings": {"num_retries": 0, "timeout": 8},
        "general_settings": {"request_read_timeout": 1}}
    gateway = start_gateway(config)
    try:
        long_text = " ".join(["x" * 10_000] * 400)  # echoed back: 4 MB of stream
        body = orjson.dumps({"model": name, "stream": True,
                             "messages": [{"role": "user", "content": long_text}]})
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", gateway.port))
        stuck.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
        try:
            deadline = time.monotonic() + 10
            while not any(isinstance(r.get("body"), dict)
                          and str(r["body"].get("model", "")).startswith(name)
                          for r in fake_openai.requests()):
                assert time.monotonic() < deadline, "the stuck stream never reached upstream"
                time.sleep(0.05)
            started = time.monotonic()
            r = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=20, json={
                "model": name, "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            assert time.monotonic() - started < 6  # not the stuck request's 8 s timeout
        finally:
            stuck.close()
    finally:
        logged = gateway.stop()
    assert "did not read its stream for 1 seconds" in logged
