"""Run by test_snapstart_hooks.py in its own process: a warmed Lambda handler, SnapStart's hooks
around a fork that stands in for a snapshot and its restores. Prints one JSON line."""

from __future__ import annotations

import json
import os
import random
import sys

os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "snap-start"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(__file__))))

import snapshot_restore_py as srp

import handler.aws_lambda as lam
from tests.deploy.events import function_url

CHAT = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def invoke() -> int:
    event = function_url("POST", "/v1/chat/completions", body=CHAT,
                         headers={"content-type": "application/json"})
    return int(lam.handler(event, None)["statusCode"])


def established_tcp() -> int:
    """TCP connections this process holds open (its socket fds in /proc/net/tcp, ESTABLISHED)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            mine.add(link[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[3] == "01" and fields[9] in mine:
                    count += 1
    return count


def run(hooks: list) -> None:  # type: ignore[type-arg]
    for func, args, kwargs in hooks:
        func(*args, **kwargs)


report: dict[str, object] = {"warm": invoke(), "warm_tcp": established_tcp()}
run(srp.get_before_snapshot())
report["snapshot_tcp"] = established_tcp()
children = []
snapshot_random = random.getstate()
for _ in range(2):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a sandbox restored from the snapshot
        os.close(read)
        # os.fork re-seeds `random` in the child; a snapshot copy would not: undo that.
        random.setstate(snapshot_random)
        run(srp.get_after_restore())
        out = {"status": invoke(), "random": random.random(), "tcp": established_tcp()}
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    children.append((pid, read))
restored = []
for pid, read in children:
    with os.fdopen(read) as f:
        restored.append(json.loads(f.read() or "{}"))
    os.waitpid(pid, 0)
report["restored"] = restored
report["hooks"] = [len(srp.get_before_snapshot()), len(srp.get_after_restore())]
print(json.dumps(report))
