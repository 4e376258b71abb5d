"""Loads the Lua scripts in lua/, resolving `--@include name.lua` lines.

Each script runs as a Redis function where the server has them (Redis 7): its library defines
the included helpers once, when it is loaded, so a call runs only the script's own body. Run
with EVALSHA instead, a script defines all its helpers again on every call (9-12 µs of the
admission scripts, measured here). Either way a script is called by a name derived from its
source, so two laneway versions sharing one Redis never run each other's code.

A script may declare Redis function flags with a `--@flags <flag> ...` line. The scripts that
end work (releases, cancels, renewals) say `allow-oom`: a Redis out of memory under `noeviction`
refuses every other script, and these are the ones that give memory back. What they may add
(statistics, a kept conversation) is bounded by the requests already in flight, since nothing
new is admitted meanwhile. Run with EVALSHA (before Redis 7) a script has no flags; Redis then
refuses only its first write that would add memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_INCLUDE = re.compile(r"^--@include\s+(\S+)\s*$", re.MULTILINE)
_FLAGS = re.compile(r"^--@flags\s+([a-z -]+?)\s*$", re.MULTILINE)

__all__ = ["Script", "script", "script_of", "script_source"]


@dataclass(frozen=True, slots=True)
class Script:
    source: str
    """The whole script with its includes inlined, as EVAL runs it."""
    sha: str
    function: str
    """Its name as a Redis function (and its library's name)."""
    library: str
    """What FUNCTION LOAD takes: the includes at the top, the script's body as the function."""


def _read(name: str) -> str:
    return resources.files("router.state").joinpath("lua", name).read_text(encoding="utf-8")


@cache
def script(name: str) -> Script:
    """`name` (e.g. "admit.lua") ready to run either way."""
    text = _read(name)
    includes = list(_INCLUDE.finditer(text))
    split = includes[-1].end() if includes else 0
    return script_of(text[split:], _resolve(text[:split]))


def script_of(body: str, prelude: str = "") -> Script:
    """A script of `body` (which reads KEYS and ARGV and returns the reply), with `prelude`'s
    definitions in scope."""
    source = f"{prelude}{body}"
    sha = hashlib.sha1(source.encode()).hexdigest()
    function = f"laneway_{sha}"  # (the flags are in the source, so in its name too)
    flags = ", ".join(f"'{flag}'" for m in _FLAGS.finditer(source) for flag in m[1].split())
    library = (f"#!lua name={function}\n{prelude}\n"
               f"redis.register_function{{function_name='{function}', "
               f"callback=function(KEYS, ARGV)\n{body}\nend, flags={{{flags}}}}}\n")
    return Script(source, sha, function, library)


def script_source(name: str) -> str:
    """The full source of `name` with its includes inlined."""
    return script(name).source


def _resolve(text: str) -> str:
    # An included file may include others (admit_core.lua brings tiers.lua with it).
    return _INCLUDE.sub(lambda m: _resolve(_read(m.group(1))), text)
