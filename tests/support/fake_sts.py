"""A loopback fake AWS STS: AssumeRole over the query API (form body in, XML out).

POST / with `Action=AssumeRole&Version=2011-06-15&RoleArn=...&RoleSessionName=...`, signed
with SigV4 for service `sts` by the source credentials, whose secret is FAKE_AWS_SECRET_ACCESS_KEY
(re-computed with botocore, `fake_bedrock.verify_sigv4`), else STS's 403
SignatureDoesNotMatch. The issued credentials are `ASIAFAKE<n>` with the secret
FAKE_STS_ISSUED_SECRET (so the fake Bedrock / SageMaker, started with that secret, accept what
they sign) and the session token `FakeSessionToken-<n>`, valid for DurationSeconds. Knobs in
the role ARN (`+key=value`): `short=1` (credentials that expire in 60 s, inside any refresh
margin), `deny=1` (403 AccessDenied), `status=N` (an InternalFailure with that status),
`delay=S`. Recorded requests carry `form` and `sigv4`.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import os
from urllib.parse import parse_qsl

from tests.support.fake_bedrock import verify_sigv4
from tests.support.fake_openai import (
    STATE,
    Receive,
    Scope,
    Send,
    _read_body,
    control,
    record,
    serve,
    tracking,
)

_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_issued = itertools.count(1)


async def _xml(send: Send, status: int, text: str) -> None:
    payload = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/xml"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


async def _error(send: Send, status: int, code: str, message: str) -> None:
    kind = "Sender" if status < 500 else "Receiver"
    await _xml(send, status, f'<ErrorResponse xmlns="{_NS}"><Error><Type>{kind}</Type>'
                             f"<Code>{code}</Code><Message>{message}</Message></Error>"
                             "<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>"
                             "</ErrorResponse>")


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http" or await control(scope, send):
        return
    raw = await _read_body(receive)
    form = dict(parse_qsl(raw.decode()))
    role = form.get("RoleArn", "")
    _, k, _ = record(scope, form, model=role)
    verdict = verify_sigv4(scope, raw)
    STATE.requests[-1].update(form=form, sigv4=verdict)
    if k.get("delay"):
        await asyncio.sleep(float(k["delay"]))
    if isinstance(verdict, str) or verdict.get("service") != "sts":
        await _error(send, 403, "SignatureDoesNotMatch", str(verdict))
        return
    if scope["method"] != "POST" or form.get("Action") != "AssumeRole" or form.get(
            "Version") != "2011-06-15" or not form.get("RoleSessionName"):
        await _error(send, 400, "InvalidAction", "Could not find operation")
        return
    if k.get("deny"):
        await _error(send, 403, "AccessDenied",
                     f"User: {verdict['key_id']} is not authorized to perform: sts:AssumeRole "
                     f"on resource: {role}")
        return
    if k.get("status"):
        await _error(send, int(k["status"]), "InternalFailure", "fake STS failure")
        return
    n = next(_issued)
    seconds = 60 if k.get("short") else int(form.get("DurationSeconds") or 3600)
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    secret = os.environ.get("FAKE_STS_ISSUED_SECRET", "issued-secret")
    await _xml(send, 200, f"""<AssumeRoleResponse xmlns="{_NS}">
  <AssumeRoleResult>
    <SourceIdentity>laneway</SourceIdentity>
    <AssumedRoleUser>
      <Arn>{role}/{form["RoleSessionName"]}</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:{form["RoleSessionName"]}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAFAKE{n:08d}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>FakeSessionToken-{n}</SessionToken>
      <Expiration>{expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>""")


app = tracking(_app)

if __name__ == "__main__":
    serve(app, "fake AWS STS")
