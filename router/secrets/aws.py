"""AWS Secrets Manager: one signed `GetSecretValue` call per secret over the lean HTTP client
(the same SigV4 signer and credential chain as S3 config reads, so neither boto3 nor botocore
is imported for it, except where only botocore can find the credentials: a profile, SSO).

Endpoint: `key_management_settings.api_base`, else AWS_ENDPOINT_URL_SECRETS_MANAGER, else
AWS_ENDPOINT_URL, else the region's. Region: AWS_REGION, AWS_DEFAULT_REGION or LiteLLM's
AWS_REGION_NAME, else us-east-1. A secret's value is its SecretString (SecretBinary decoded as
UTF-8 when there is no string).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from router.aws.credentials import CredentialsUnavailable, resolve
from router.aws.sigv4 import Credentials, sign
from router.httpclient import UpstreamClient
from router.httpclient.oneshot import Unreachable, request
from router.secrets.base import SecretNotFound, SecretUnavailable, env_first, json_body

__all__ = ["AwsSecretsManager"]

# Secret names: letters, digits and /_+=.@- (up to 512 characters).
_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_NOT_FOUND = {"ResourceNotFoundException"}
_DENIED = {"AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
           "ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken"}


class AwsSecretsManager:
    label = "AWS Secrets Manager"

    def __init__(self, environ: Mapping[str, str], api_base: str | None, timeout: float) -> None:
        self.environ = environ
        self.region = env_first(environ, "AWS_REGION", "AWS_DEFAULT_REGION",
                                "AWS_REGION_NAME") or "us-east-1"
        endpoint = (api_base or env_first(environ, "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                                          "AWS_ENDPOINT_URL")
                    or f"https://secretsmanager.{self.region}.amazonaws.com")
        self.url = endpoint.rstrip("/") + "/"
        self.timeout = timeout
        self._credentials: Credentials | None = None

    def secret_name(self, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("AWS Secrets Manager names may use only letters, digits and "
                             "/_+=.@-")
        return name

    async def prepare(self, client: UpstreamClient) -> None:
        try:  # cached by the chain itself until shortly before they expire
            self._credentials = await resolve(self.environ, client)
        except CredentialsUnavailable as exc:
            raise SecretUnavailable(str(exc)) from None

    async def read(self, client: UpstreamClient, name: str) -> str:
        if self._credentials is None:
            await self.prepare(client)
        assert self._credentials is not None
        body = b'{"SecretId":' + _json_text(name) + b"}"
        headers = sign("POST", self.url, service="secretsmanager", region=self.region,
                       credentials=self._credentials, body=body, headers={
                           "Content-Type": "application/x-amz-json-1.1",
                           "X-Amz-Target": "secretsmanager.GetSecretValue"})
        try:
            reply = await request(client, "POST", self.url, headers=headers, body=body,
                                  timeout=self.timeout)
        except Unreachable as exc:
            raise SecretUnavailable(f"cannot reach {self.label} at {self.url}: {exc}") from None
        doc: Any = json_body(reply.body, self.label) if reply.body else {}
        if reply.status == 200 and isinstance(doc, dict):
            if isinstance(doc.get("SecretString"), str):
                return str(doc["SecretString"])
            if isinstance(doc.get("SecretBinary"), str):
                try:
                    return base64.b64decode(doc["SecretBinary"]).decode("utf-8")
                except ValueError:
                    raise SecretUnavailable("the secret's binary value is not UTF-8 text"
                                            ) from None
            raise SecretUnavailable("the reply carried no SecretString")
        code = str(doc.get("__type") or doc.get("code") or "").rpartition("#")[2] if (
            isinstance(doc, dict)) else ""
        if code in _NOT_FOUND:
            raise SecretNotFound(name)
        if code in _DENIED or reply.status == 403:
            raise SecretUnavailable(f"access denied ({code or reply.status})")
        raise SecretUnavailable(f"{self.label} answered {reply.status} {code}".rstrip())


def _json_text(value: str) -> bytes:
    import orjson

    return orjson.dumps(value)
