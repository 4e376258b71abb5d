"""`os.environ/NAME` references: resolved anywhere in the document, with the YAML path on failure.

An unset variable usually means "not given" (None), as in LiteLLM: a deployment without an
api_key may still work through the provider's default credentials. A few places are different,
because silently dropping them would change what laneway is or whom it lets in; there, and in
list items (a list with a hole in it is never what was meant), an unset variable is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.config.paths import Loc, format_path

PREFIX = "os.environ/"

_ANY_INDEX = -1

# Paths (list indexes written as _ANY_INDEX) where a reference to an unset variable is an error.
REQUIRED_WHEN_REFERENCED: tuple[tuple[str | int, ...], ...] = (
    ("model_list", _ANY_INDEX, "model_name"),
    ("model_list", _ANY_INDEX, "litellm_params", "model"),
    ("credential_list", _ANY_INDEX, "credential_name"),
    # No master key would leave the gateway open to anyone.
    ("general_settings", "master_key"),
    # No Redis would quietly make each instance keep its own queues and limits.
    ("router_settings", "redis_host"),
    ("router_settings", "redis_url"),
)


def reference(value: Any) -> str | None:
    """The variable name if `value` is an `os.environ/NAME` reference, else None."""
    if isinstance(value, str) and value.startswith(PREFIX):
        return value[len(PREFIX) :].strip()
    return None


def _matches(loc: Loc, pattern: tuple[str | int, ...]) -> bool:
    if len(loc) != len(pattern):
        return False
    return all(
        (want == _ANY_INDEX and isinstance(got, int)) or want == got
        for got, want in zip(loc, pattern, strict=True)
    )


def is_required(loc: Loc) -> bool:
    if loc and isinstance(loc[-1], int):
        return True
    return any(_matches(loc, pattern) for pattern in REQUIRED_WHEN_REFERENCED)


def resolve(data: Any, env: Mapping[str, str], loc: Loc = ()) -> tuple[Any, list[str]]:
    """A copy of `data` with every reference replaced; plus one error line per required miss."""
    errors: list[str] = []

    def walk(value: Any, here: Loc) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, (*here, str(key))) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*here, index)) for index, item in enumerate(value)]
        name = reference(value)
        if name is None:
            return value
        if not name:
            errors.append(f"{format_path(here)}: `{PREFIX}` needs a variable name after it")
            return None
        if name in env:
            return env[name]
        if is_required(here):
            errors.append(f"{format_path(here)}: environment variable {name} is not set")
        return None

    return walk(data, loc), errors


def file_environment(
    block: Any, process_env: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The `environment_variables` section as strings, its own references read from the process.

    Entries whose reference is unset are left out: they would not be set either way.
    """
    if block is None:
        return {}, []
    if not isinstance(block, dict):
        return {}, ["environment_variables: must be a mapping of names to values"]
    resolved, errors = resolve(block, process_env, ("environment_variables",))
    values: dict[str, str] = {}
    for name, value in resolved.items():
        if value is None:
            continue
        if isinstance(value, dict | list):
            errors.append(f"{format_path(('environment_variables', name))}: must be a single value")
            continue
        values[name] = _env_text(value)
    return values, errors


def _env_text(value: Any) -> str:
    # YAML turns `DEBUG: true` into a bool; the variable should read as written, not "True".
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
