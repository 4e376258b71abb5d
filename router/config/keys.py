"""Find keys the schema does not declare: typos (warned about) and known-but-unused LiteLLM keys.

Models that accept any key (`litellm_params`, `model_info`) are walked for their declared nested
models only; their other keys are provider parameters or free-form metadata, not mistakes.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel

from router.config.fields import Section
from router.config.paths import Loc, format_path


@dataclass
class ExtraKeys:
    unknown: list[str] = field(default_factory=list)  # "path: unknown key, ignored (hint)"
    unused: list[str] = field(default_factory=list)  # paths only


def extra_keys(data: Any, model: type[Section]) -> ExtraKeys:
    found = ExtraKeys()
    _walk(data, model, (), found)
    return found


def _walk(data: Any, model: type[Section], loc: Loc, found: ExtraKeys) -> None:
    if not isinstance(data, dict):
        return  # not a mapping at all: validation reports that
    open_ended = model.model_config.get("extra") == "allow"
    for key, value in data.items():
        here = (*loc, str(key))
        declared = model.model_fields.get(key) if isinstance(key, str) else None
        if declared is None:
            if open_ended:
                continue
            if key in model.accepted_unused:
                found.unused.append(format_path(here))
            else:
                hint = _hint(key, model)
                found.unknown.append(f"{format_path(here)}: unknown key, ignored{hint}")
            continue
        nested = _nested_field_section(model, key)
        if nested is None:
            continue
        if isinstance(value, list):
            for index, item in enumerate(value):
                _walk(item, nested, (*here, index), found)
        else:
            _walk(value, nested, here, found)


def _hint(key: Any, model: type[Section]) -> str:
    import difflib  # only when a key is unknown

    known = [*model.model_fields, *model.accepted_unused]
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


@functools.cache
def _nested_field_section(model: type[Section], key: str) -> type[Section] | None:
    # Once per field, not once per deployment: a model_list repeats the same fields many times.
    return _nested_section(model.model_fields[key].annotation)


def _nested_section(annotation: Any) -> type[Section] | None:
    """The config model inside an annotation such as `list[ModelEntry]` or `X | None`."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation if issubclass(annotation, Section) else None
    for arg in get_args(annotation):
        found = _nested_section(arg)
        if found is not None:
            return found
    return None
