"""Hot reload: notice that the config (or one of its includes) changed, and read it again.

`ConfigWatcher.check()` asks each document read last time whether it changed (S3: a GET with
If-None-Match, answered 304 while the ETag holds; GCS: the object's generation; a file: its
mtime and size, then its hash), and only when one did reads and validates the whole config
again. A config that does not validate is logged once, by YAML path, and ignored: the previous
one stays in service. `check` blocks (network, parsing); a server runs it in a worker thread.
"""

from __future__ import annotations

import logging
import time

from router.config.load import read_config
from router.config.schema import Config
from router.config.sources import Origin, Reader
from router.errors import ConfigError

log = logging.getLogger("laneway.config")

__all__ = ["ConfigWatcher"]


class ConfigWatcher:
    def __init__(self, config: Config, interval: float) -> None:
        origin = config._origin
        if not isinstance(origin, Origin):
            raise ValueError("config_reload_seconds needs a config read by load_config")
        self.origin: Origin = origin
        self.interval = interval
        self._next = time.monotonic() + interval
        self._failed: str | None = None

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def check(self) -> Config | None:
        """The new config when the source changed and validates; else None."""
        self._next = time.monotonic() + self.interval
        with Reader(self.origin.environ) as reader:
            try:
                if not self._changed(reader):
                    return None
                config = read_config(self.origin.location, reader)
            except ConfigError as exc:
                message = str(exc)
                if message != self._failed:  # once per distinct problem, not every interval
                    log.error("config %s changed but cannot be used; still serving the "
                              "previous config: %s", self.origin.location, message)
                self._failed = message
                return None
        self._failed = None
        self.origin = config._origin
        log.info("config %s reloaded (%d document(s))", self.origin.location,
                 len(self.origin.files))
        return config

    def _changed(self, reader: Reader) -> bool:
        files = list(self.origin.files)
        changed = False
        for index, last in enumerate(files):
            fresh = reader.refetch(last)
            if fresh is None:
                continue
            if fresh.digest != last.digest:
                changed = True
                break
            files[index] = fresh  # same bytes, new tag: the next check asks with the new one
        if not changed:
            self.origin = Origin(self.origin.location, self.origin.environ, tuple(files))
        return changed
