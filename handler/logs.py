"""Logging set-up for the `laneway` command and the Lambda handler.

Every line is one JSON object by default (`{"time", "level", "logger", "message", ...}`); a
record logged with `extra={"fields": {...}}` (the per-request line) has those fields merged in
at the top level. `LANEWAY_LOG_FORMAT=text` gives plain lines for a terminal instead.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

__all__ = ["JsonFormatter", "TextFormatter", "hide_query_strings", "setup_logging"]


_second: list[Any] = [-1, ""]  # the last second formatted, and its text (one line per request)


def _utc(created: float) -> str:
    whole = int(created)
    if whole != _second[0]:
        _second[0], _second[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second[1]}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"time": _utc(record.created), "level": record.levelname,
                               "logger": record.name, "message": record.getMessage()}
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        return f"{line} {orjson.dumps(fields, default=str).decode()}" if fields else line


def setup_logging(level: str = "INFO", fmt: str | None = None) -> None:
    fmt = (fmt or os.environ.get("LANEWAY_LOG_FORMAT") or "json").lower()
    formatter = TextFormatter() if fmt == "text" else JsonFormatter()
    root = logging.getLogger("laneway")
    if getattr(root, "_laneway_configured", False):
        root.setLevel(level.upper())
        for handler in root.handlers:
            handler.setFormatter(formatter)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    root._laneway_configured = True  # type: ignore[attr-defined]


class _NoQueryString(logging.Filter):
    """Drops the query string from uvicorn's access-log lines (`--detailed_debug`): a client
    may put a key there (`?api_key=...`), and laneway reads nothing from it anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "?" in a for a in args):
            record.args = tuple(a.split("?", 1)[0] + "?…" if isinstance(a, str) and "?" in a
                                else a for a in args)
        return True


def hide_query_strings() -> None:
    """Install the filter on uvicorn's access logger (once; uvicorn's own logging set-up keeps
    a logger's filters)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _NoQueryString) for f in access.filters):
        access.addFilter(_NoQueryString())
