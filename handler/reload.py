"""Hot reload wiring (`general_settings.config_reload_seconds`).

Under uvicorn a background task checks the config every interval in a worker thread, off the
request path. Under Lambda there is no time between invocations, so the check runs at the start
of an invocation once the interval has passed (`check_now`). Either way the new config is
swapped into the one `Router` (`Router.reconfigure`): its state backend and upstream pool stay.
What is read once at start-up (master key, callbacks, metrics, the state backend) needs a
restart to change; a reload that changes it says so in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from router.config.serving import require_models
from router.errors import ConfigError
from router.groups import build_deployments

if TYPE_CHECKING:
    from fastapi import FastAPI

    from router.config import Config
    from router.config.watch import ConfigWatcher

log = logging.getLogger("laneway")

__all__ = ["check_now", "install_reload"]


def install_reload(app: FastAPI, config: Config, *, background: bool) -> ConfigWatcher | None:
    seconds = config.general_settings.config_reload_seconds
    if not seconds or config._origin is None:
        return None
    from router.config.watch import ConfigWatcher

    watcher = ConfigWatcher(config, float(seconds))
    app.state.config_watcher = watcher
    if background:
        task: list[asyncio.Task[None]] = []

        async def start() -> None:
            task.append(asyncio.get_running_loop().create_task(_watch(app, watcher)))

        async def stop() -> None:
            for running in task:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running

        app.router.on_startup.append(start)
        app.router.on_shutdown.insert(0, stop)
    return watcher


def check_now(app: FastAPI) -> None:
    """A blocking check (Lambda: before the invocation is handled) when the interval passed."""
    watcher: ConfigWatcher = app.state.config_watcher
    if watcher.due():
        _apply(app, watcher.check())


async def _watch(app: FastAPI, watcher: ConfigWatcher) -> None:
    while True:
        await asyncio.sleep(watcher.interval)
        try:
            _apply(app, await asyncio.to_thread(watcher.check))
        except Exception:  # a broken check must not end reloading for the process's life
            log.exception("config reload check failed")


def _apply(app: FastAPI, config: Config | None) -> None:
    if config is None:
        return
    try:
        require_models(config, build_deployments(config))
    except ConfigError as exc:
        log.error("reloaded config not used; still serving the previous config: %s", exc)
        return
    for line in app.state.router.reconfigure(config):
        log.warning("config reload: %s", line)
    app.state.config = config
    log.info("laneway now serving model groups: %s", ", ".join(app.state.router.model_names()))
