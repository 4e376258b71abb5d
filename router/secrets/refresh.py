"""Re-reading a running Router's secrets in the background (`refresh_interval`).

Every interval the names the config reads from its manager are read again in one concurrent
batch over the Router's own HTTP pool, off the request path. When a value changed, the same
config document is parsed again with the new values and swapped in with `Router.reconfigure`
(the hot-reload path): requests already under way finish with what they started with, new
ones use the new key; deployment ids leave credentials out, so limits, lines and cooldowns
carry over. A name the manager cannot answer for keeps its last good value, with a warning;
the refresh never stops for a failure. Under Lambda the task runs while invocations do, on
the loop Mangum reuses, so a refresh never delays a request either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from router.errors import ConfigError

if TYPE_CHECKING:
    from router.router import Router

log = logging.getLogger("laneway.config")

__all__ = ["SecretRefresher"]


class SecretRefresher:
    def __init__(self, router: Router) -> None:
        self.router = router
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._task = loop.create_task(self._run(), name="laneway-secret-refresh")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            binding = self.router.config._secrets
            if binding is None or not binding.interval:
                return  # a reload took the manager (or its interval) away
            await asyncio.sleep(binding.interval)
            try:
                await self.refresh_once()
            except Exception:  # a broken refresh must not end refreshing for good
                log.exception("secret refresh failed; trying again in %ss", binding.interval)

    async def refresh_once(self) -> bool:
        """One re-read; True when new values were put in service."""
        from router.config.load import with_secrets
        from router.secrets.load import fetch, updated

        router = self.router
        binding = router.config._secrets
        if binding is None:
            return False
        fresh = updated(binding, await fetch(binding, router._http()))
        if fresh is None:
            return False
        try:
            # Parsing is CPU work that grows with the config: kept off the event loop.
            config = await asyncio.to_thread(with_secrets, router.config, fresh)
        except ConfigError as exc:
            log.warning("secret refresh: the new values do not make a usable config; still "
                        "serving the previous ones: %s", exc)
            return False
        if router.config._secrets is not binding:
            return False  # a config reload replaced the config meanwhile; it read its own
        for line in router.reconfigure(config):
            log.warning("secret refresh: %s", line)
        changed = sorted(k for k, v in fresh.values.items() if binding.values.get(k) != v)
        log.info("secret refresh: new values for %s from %s in service", ", ".join(changed),
                 binding.manager.label)
        return True
