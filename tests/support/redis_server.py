"""Real redis-servers on free loopback ports, owned by the test session: a standalone one, and a
Redis Cluster of several primaries (the shape of ElastiCache Serverless or a sharded cluster)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from tests.support.procs import free_port, spawn, stop, wait_port


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run the README's test command")
        self.workdir = self.workdir or tempfile.mkdtemp(prefix="laneway-redis-")
        self.proc = spawn(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir, "--protected-mode", "no", *extra]
        )
        wait_port(self.port, self.proc)

    def kill(self) -> None:
        """Stop the server abruptly (kill -9), as a crash would."""
        if self.proc is not None:
            import signal

            stop(self.proc, sig=signal.SIGKILL)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


def start_redis() -> RedisServer:
    server = RedisServer(port=free_port())
    server.start()
    return server


@dataclass
class RedisCluster:
    """Primaries that split the 16384 slots evenly (and their replicas, if any); `url` names the
    first, as a client's configuration would name any one node."""

    nodes: list[RedisServer] = field(default_factory=list)
    _clients: dict[int, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def client(self, node: int):  # type: ignore[no-untyped-def]
        """A redis-py client talking to that one node (kept, like its connection)."""
        if node not in self._clients:
            import redis

            self._clients[node] = redis.Redis(port=self.nodes[node].port)
        return self._clients[node]

    def owner_of(self, slot: int) -> int:
        """Index of the node that owns `slot` now."""
        for start, end, primary, *_ in self.client(0).execute_command("CLUSTER SLOTS"):
            if start <= slot <= end:
                return next(i for i, n in enumerate(self.nodes) if n.port == int(primary[1]))
        raise LookupError(slot)

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()  # type: ignore[attr-defined]
        for node in self.nodes:
            node.stop()


def start_redis_cluster(primaries: int = 3, replicas: int = 0) -> RedisCluster:
    """`primaries` nodes sharing the slots, then `replicas` nodes per primary (listed after
    all primaries) that take over when their primary dies."""
    total = primaries * (1 + replicas)
    cluster = RedisCluster([RedisServer(port=free_port()) for _ in range(total)])
    bus_ports = [free_port() for _ in cluster.nodes]  # the default, port + 10000, may not exist
    for node, bus_port in zip(cluster.nodes, bus_ports, strict=True):
        node.start("--cluster-enabled", "yes", "--cluster-port", str(bus_port),
                   "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000")
    per_node = 16384 // primaries
    for i in range(primaries):
        last = 16383 if i == primaries - 1 else (i + 1) * per_node - 1
        cluster.client(i).execute_command("CLUSTER ADDSLOTSRANGE", i * per_node, last)
    for node, bus_port in zip(cluster.nodes[1:], bus_ports[1:], strict=True):
        cluster.client(0).execute_command("CLUSTER MEET", "127.0.0.1", node.port, bus_port)
    _wait(cluster, lambda c: all(_settled(c.client(i), primaries, total) for i in range(total)))
    for r in range(primaries, total):
        primary = cluster.client((r - primaries) % primaries).cluster("MYID").decode()
        cluster.client(r).cluster("REPLICATE", primary)
    _wait(cluster, lambda c: all(
        c.client(r).info("replication").get("master_link_status") == "up"
        for r in range(primaries, total)))
    return cluster


def _wait(cluster: RedisCluster, ready) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while not ready(cluster):
        if time.monotonic() > deadline:
            cluster.stop()
            raise RuntimeError("the test Redis Cluster did not come up")
        time.sleep(0.05)


def _settled(client, primaries: int, nodes: int) -> bool:  # type: ignore[no-untyped-def]
    info = client.execute_command("CLUSTER INFO")  # parsed into a dict by redis-py
    return (info.get("cluster_state") == "ok"
            and int(info.get("cluster_known_nodes", 0)) == nodes
            and len(client.execute_command("CLUSTER SLOTS")) == primaries)
