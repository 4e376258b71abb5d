"""YAML locations written the way users read them: `model_list[2].litellm_params.rpm`."""

from __future__ import annotations

import re

Loc = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def format_path(loc: Loc) -> str:
    """Join a location: list indexes become `[i]`, odd keys are quoted to stay readable."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "<root>"
