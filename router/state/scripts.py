"""Loads the Lua scripts in lua/, resolving `--@include name.lua` lines.

Scripts are called by SHA (EVALSHA), so two laneway versions sharing one Redis never run each
other's code; redis-py loads a script again by itself when Redis answers NOSCRIPT.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_INCLUDE = re.compile(r"^--@include\s+(\S+)\s*$", re.MULTILINE)

__all__ = ["script_source"]


def _read(name: str) -> str:
    return resources.files("router.state").joinpath("lua", name).read_text(encoding="utf-8")


@cache
def script_source(name: str) -> str:
    """The full source of `name` (e.g. "admit.lua") with its includes inlined."""
    return _resolve(_read(name))


def _resolve(text: str) -> str:
    # An included file may include others (admit_core.lua brings tiers.lua with it).
    return _INCLUDE.sub(lambda m: _resolve(_read(m.group(1))), text)
