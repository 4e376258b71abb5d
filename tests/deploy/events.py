"""Lambda HTTP events as AWS sends them: Function URL (payload 2.0), API Gateway REST (v1) and
HTTP API (v2), and Application Load Balancer target groups (with and without multi-value headers).
Field sets follow the payloads AWS documents; ids and times are fixed so events are repeatable."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

ACCOUNT = "123456789012"
SOURCE_IP = "203.0.113.7"
EPOCH_MS = 1767225600000  # 2026-01-01T00:00:00Z
CLF_TIME = "01/Jan/2026:00:00:00 +0000"


def _body(body: bytes | None, as_base64: bool) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    if as_base64:
        return base64.b64encode(body).decode(), True
    return body.decode(), False


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def function_url(method: str, path: str, *, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, query: str = "",
                 as_base64: bool = False) -> dict[str, Any]:
    """Function URL invocation: payload format 2.0, lowercase headers, base64 for binary bodies."""
    url_id = "a1b2c3d4e5f6g7h8i9j0klmnopqrstuv"
    domain = f"{url_id}.lambda-url.us-east-1.on.aws"
    text, encoded = _body(body, as_base64)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": domain, "x-forwarded-proto": "https", "x-forwarded-port": "443",
                    "x-forwarded-for": SOURCE_IP, "x-amzn-trace-id": "Root=1-0-0",
                    "user-agent": "OpenAI/Python", **_lower(headers or {})},
        "requestContext": {
            "accountId": "anonymous", "apiId": url_id, "domainName": domain,
            "domainPrefix": url_id, "requestId": "4f2a1c8e-0000-4000-8000-000000000001",
            "routeKey": "$default", "stage": "$default", "time": CLF_TIME, "timeEpoch": EPOCH_MS,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": SOURCE_IP, "userAgent": "OpenAI/Python"},
        },
        "isBase64Encoded": encoded,
    }
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(query).items()}
    if text is not None:
        event["body"] = text
    return event


def api_gateway_v2(method: str, path: str, *, body: bytes | None = None,
                   headers: Mapping[str, str] | None = None,
                   as_base64: bool = False) -> dict[str, Any]:
    """HTTP API with a `$default` stage and an `ANY /{proxy+}` route (payload format 2.0)."""
    event = function_url(method, path, body=body, headers=headers, as_base64=as_base64)
    domain = "r4nd0m1d.execute-api.us-east-1.amazonaws.com"
    event["routeKey"] = "ANY /{proxy+}"
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["headers"]["host"] = domain
    event["requestContext"].update(accountId=ACCOUNT, apiId="r4nd0m1d", domainName=domain,
                                   domainPrefix="r4nd0m1d", routeKey="ANY /{proxy+}")
    return event


def api_gateway_v1(method: str, path: str, *, body: bytes | None = None,
                   headers: Mapping[str, str] | None = None,
                   as_base64: bool = False) -> dict[str, Any]:
    """REST API proxy integration on `/{proxy+}` in stage `prod` (payload format 1.0)."""
    domain = "r3st4p1id.execute-api.us-east-1.amazonaws.com"
    all_headers = {"Host": domain, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443",
                   "X-Forwarded-For": SOURCE_IP, "User-Agent": "OpenAI/Python",
                   **dict(headers or {})}
    text, encoded = _body(body, as_base64)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123", "resourcePath": "/{proxy+}", "httpMethod": method,
            "extendedRequestId": "Xyz=", "requestTime": CLF_TIME, "path": f"/prod{path}",
            "accountId": ACCOUNT, "protocol": "HTTP/1.1", "stage": "prod",
            "domainPrefix": "r3st4p1id", "requestTimeEpoch": EPOCH_MS,
            "requestId": "4f2a1c8e-0000-4000-8000-000000000002", "domainName": domain,
            "apiId": "r3st4p1id",
            "identity": {"sourceIp": SOURCE_IP, "userAgent": "OpenAI/Python",
                         "accountId": None, "caller": None, "user": None},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def alb(method: str, path: str, *, body: bytes | None = None,
        headers: Mapping[str, str] | None = None, as_base64: bool = False,
        multi_value: bool = False) -> dict[str, Any]:
    """ALB target group event; `multi_value` mirrors the target group attribute of that name."""
    all_headers = {"host": "laneway-alb-123.us-east-1.elb.amazonaws.com",
                   "x-forwarded-proto": "https", "x-forwarded-port": "443",
                   "x-forwarded-for": SOURCE_IP, "x-amzn-trace-id": "Root=1-0-0",
                   "user-agent": "OpenAI/Python", **_lower(headers or {})}
    text, encoded = _body(body, as_base64)
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": f"arn:aws:elasticloadbalancing:us-east-1:"
                                   f"{ACCOUNT}:targetgroup/laneway/0123456789abcdef"}},
        "httpMethod": method,
        "path": path,
        "body": text or "",
        "isBase64Encoded": encoded,
    }
    if multi_value:
        event["multiValueHeaders"] = {k: [v] for k, v in all_headers.items()}
        event["multiValueQueryStringParameters"] = {}
    else:
        event["headers"] = all_headers
        event["queryStringParameters"] = {}
    return event
