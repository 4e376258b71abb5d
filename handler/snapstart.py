"""Lambda SnapStart runtime hooks (Python 3.12+ runtimes ship `snapshot_restore_py`).

SnapStart snapshots the initialised sandbox once per published version and starts later
sandboxes from copies of it, so whatever the process held at the snapshot is shared by every
copy: open sockets (dead once restored), a random generator's state (the same "random" numbers
in every copy), credentials cached from an endpoint (possibly expired).

- before the snapshot: every task of the event loop Mangum will use is cancelled and the loop
  closed; a new loop takes its place. laneway's upstream pool, its Redis connections, the
  wake-up subscription and the lease renewer all belong to a loop and are rebuilt on first use
  by a new one, so nothing connected is captured. (Normally nothing is open at that point
  anyway: the config is read by a private client that is closed after, and the engine connects
  on the first request.)
- after a restore: the same once more (a sandbox restored from the snapshot must not reuse
  anything from it), `random` is re-seeded from the OS, cached AWS/GCP credentials are dropped,
  and a hot-reload check (if configured) runs at the first invocation rather than one interval
  after the snapshot was taken.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("laneway")

__all__ = ["after_restore", "before_snapshot", "register"]


def register(app: FastAPI) -> bool:
    """Register the hooks when the runtime has `snapshot_restore_py`; True if it did."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot, app)
    register_after_restore(after_restore, app)
    return True


def before_snapshot(app: FastAPI) -> None:
    _fresh_loop()
    log.info("snapstart: connections dropped before the snapshot")


def after_restore(app: FastAPI) -> None:
    _fresh_loop()
    random.seed(os.urandom(32))
    from router.aws.credentials import forget_cached
    from router.config.gcs import forget_cached as forget_gcs_token

    forget_cached()
    forget_gcs_token()
    watcher = getattr(app.state, "config_watcher", None)
    if watcher is not None:
        watcher._next = time.monotonic()  # due at once: the snapshot may be days old
    log.info("snapstart: restored; state will reconnect on first use")


def _fresh_loop() -> None:
    """Retire the thread's event loop (its tasks cancelled, its sockets closed) and install a
    new one, so everything bound to the old loop is rebuilt on first use."""
    policy = asyncio.get_event_loop_policy()
    try:
        old = policy.get_event_loop()
    except RuntimeError:
        old = None
    if old is not None and not old.is_closed() and not old.is_running():
        tasks = [t for t in asyncio.all_tasks(old) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            old.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        # Every socket the loop serves (pooled upstream connections, Redis, the subscription)
        # is closed now, not left for the garbage collector: a snapshot must hold none.
        # `_transports` is asyncio's own table of a selector loop's live transports.
        for transport in list(getattr(old, "_transports", {}).values()):
            transport.abort()
        old.run_until_complete(asyncio.sleep(0))  # connection_lost callbacks run
        old.run_until_complete(old.shutdown_asyncgens())
        old.close()
    policy.set_event_loop(policy.new_event_loop())
    gc.collect()
