"""`include:` — further YAML files merged into the config, as the LiteLLM proxy merges them.

    include:
      - models/openai.yaml        # relative to the including config's own location
      - /etc/laneway/azure.yaml   # files may also be absolute (the operator wrote them)

Each included file is a mapping of sections. In file order, a list section (`model_list`,
`credential_list`) is appended to the one already there; any other key replaces what came
before it (a warning says so when something did). An included file may not have an `include:`
of its own, so there is no include cycle to follow. A config in a bucket includes objects of the
same bucket only: `s3://` / `gs://` URIs and `..` above the bucket's root are refused.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from router.errors import ConfigError

_BUCKET_SCHEMES = ("s3://", "gs://")

Reader = Callable[[str], Any]
"""Reads and parses the document at a location (the config's own reader); raises ConfigError."""


class _Refused(Exception):
    pass


def expand_includes(
    data: Any, location: str, read: Reader
) -> tuple[Any, list[str], list[str]]:
    """`data` with its includes merged in; plus error lines and warning lines, by `include[i]`."""
    if not isinstance(data, dict) or "include" not in data:
        return data, [], []
    merged = {key: value for key, value in data.items() if key != "include"}
    listed = data["include"]
    if listed is None:
        return merged, [], []
    if not isinstance(listed, list):
        return merged, [
            "include: must be a list of file paths, e.g. include: [models.yaml]"], []

    errors: list[str] = []
    warnings: list[str] = []
    set_by = {key: "the including config" for key, value in merged.items() if value is not None}
    seen: dict[str, str] = {_same(location): "the including config"}
    for index, name in enumerate(listed):
        label = f"include[{index}]"
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{label}: must be a file path")
            continue
        label = f"{label} ({name})"
        try:
            target = _locate(location, name.strip())
        except _Refused as why:
            errors.append(f"{label}: {why}")
            continue
        if _same(target) in seen:
            errors.append(f"{label}: {target} is already included as {seen[_same(target)]}")
            continue
        seen[_same(target)] = label
        try:
            document = read(target)
        except ConfigError as exc:
            errors.append(f"{label}: {exc}")
            continue
        if not isinstance(document, dict):
            errors.append(f"{label}: must be a mapping of sections such as model_list, not a "
                          f"{type(document).__name__}")
            continue
        if "include" in document:
            errors.append(f"{label}: has an include: of its own; nested includes are not "
                          "supported (list every file in the top-level include)")
            continue
        warnings += _merge(merged, document, label, set_by)
    return merged, errors, warnings


def _merge(merged: dict[str, Any], document: Mapping[str, Any], label: str,
           set_by: dict[str, str]) -> list[str]:
    warnings = []
    for key, value in document.items():
        current = merged.get(key)
        if isinstance(value, list) and isinstance(current, list):
            merged[key] = [*current, *value]
            continue
        if current is not None and value is not None:
            warnings.append(f"{label}: {key} replaces the one set by {set_by[key]}")
        merged[key] = value
        if value is not None:
            set_by[key] = label
    return warnings


def _locate(location: str, name: str) -> str:
    """Where an include lives: next to the config that names it."""
    if "://" in name:
        raise _Refused("must be a path relative to the config, not a URI")
    for scheme in _BUCKET_SCHEMES:
        if location.startswith(scheme):
            bucket, _, key = location[len(scheme):].partition("/")
            # A leading "/" starts from the bucket's root; the bucket itself never changes.
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(key), name))
            if joined == ".." or joined.startswith("../"):
                raise _Refused(f"leads out of the bucket; an include is read from "
                               f"{scheme}{bucket}/ only")
            return f"{scheme}{bucket}/{joined.lstrip('/')}"
    return str(Path(location).expanduser().parent / Path(name).expanduser())


def _same(location: str) -> str:
    """A location spelled one way, so a file included twice is noticed."""
    if location.startswith(_BUCKET_SCHEMES):
        return location
    return str(Path(location).expanduser().resolve())
