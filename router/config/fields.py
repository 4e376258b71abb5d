"""Value types for the config models, each with the one-line message a user sees when it is wrong.

Pydantic's own messages name types ("Input should be a valid integer") and split unions into one
error per member; these validators give a single plain sentence per field instead, and never
echo the offending value (it may be a secret).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Annotated, Any, ClassVar, NoReturn

from pydantic import BaseModel, ConfigDict, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _fail(message: str) -> NoReturn:
    raise PydanticCustomError("laneway_config", message)


def _as_int(value: Any) -> int | None:
    """An integer from an int, an integral float or a numeric string (env values are strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        # "1e6" is a string to PyYAML (no dot); as a limit it plainly means one million.
        number = _as_number(value)
        return int(number) if number is not None and number.is_integer() else None
    return None


def _as_number(value: Any) -> float | None:
    """A finite number from a number or a numeric string ("nan" and "inf" are not limits)."""
    if isinstance(value, bool):
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    return number if number is not None and math.isfinite(number) else None


def _checked(parse: Callable[[Any], Any], accept: Callable[[Any], bool], message: str
             ) -> Callable[[Any], Any]:
    """A validator: `parse` the value (None when it cannot), then require `accept`."""

    def check(value: Any) -> Any:
        number = parse(value)
        if number is None or not accept(number):
            _fail(message)
        return number

    return check


_integer = _checked(_as_int, lambda n: True, "must be an integer")
_positive_int = _checked(_as_int, lambda n: n > 0, "must be a positive integer")
_non_negative_int = _checked(_as_int, lambda n: n >= 0, "must be an integer of 0 or more")
_port = _checked(_as_int, lambda n: 0 < n < 65536, "must be a port number (1-65535)")
_number = _checked(_as_number, lambda n: True, "must be a number")
_positive_number = _checked(_as_number, lambda n: n > 0, "must be a positive number")
_non_negative_number = _checked(_as_number, lambda n: n >= 0, "must be a number of 0 or more")


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    _fail("must be true or false")


def _text(value: Any) -> str:
    # Numbers are accepted as text: `api_version: 2024` or `id: 7` mean the string.
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    _fail("must be a string")


def _text_list(value: Any) -> list[str]:
    # A single string stands for a one-item list (`callbacks: langfuse`).
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    _fail("must be a list of strings")


def _text_or_list(value: Any) -> str | list[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    _fail("must be a string or a non-empty list of strings")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _text_map(value: Any) -> dict[str, str]:
    if isinstance(value, dict) and all(_is_scalar(item) for item in value.values()):
        return {str(key): str(item) for key, item in value.items()}
    _fail("must be a mapping of names to strings")


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail("must be a mapping")
    return dict(value)


def _fallbacks(value: Any) -> list[dict[str, list[str]]]:
    shape = "must be a list of mappings like {model-group: [fallback-group, ...]}"
    if not isinstance(value, list):
        _fail(shape)
    out: list[dict[str, list[str]]] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not all(
            isinstance(targets, list) and all(isinstance(t, str) for t in targets)
            for targets in item.values()
        ):
            _fail(f"{shape} (item {index} is not)")
        out.append({str(group): list(targets) for group, targets in item.items()})
    return out


def _queue_size(value: Any) -> int | dict[str, int]:
    # 0 is meaningful: no waiting at all, answer 429 at once when capacity runs out.
    # -1 is the explicit "unlimited" (the default is a finite line, router/options.py).
    if isinstance(value, dict):
        sizes = {str(key): _as_int(size) for key, size in value.items()}
        if all(size is not None and size >= -1 for size in sizes.values()):
            return {key: size for key, size in sizes.items() if size is not None}
    else:
        size = _as_int(value)
        if size is not None and size >= -1:
            return size
    _fail("must be an integer of -1 (unlimited) or more, or a mapping of `default`, a model "
          "group or `priority:<n>` to such an integer")


def _is_alias_target(target: Any) -> bool:
    # Either the group name, or LiteLLM's {model: <group>, hidden: <bool>} form.
    return isinstance(target, str) or (
        isinstance(target, dict) and isinstance(target.get("model"), str)
    )


def _alias_map(value: Any) -> dict[str, str | dict[str, Any]]:
    if isinstance(value, dict) and all(_is_alias_target(t) for t in value.values()):
        return {str(alias): target for alias, target in value.items()}
    _fail("must be a mapping of alias to model group (a string, or a mapping with `model`)")


def _text_or_int(value: Any) -> str | int:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    _fail("must be a string or an integer")


Integer = Annotated[int, PlainValidator(_integer)]
PositiveInt = Annotated[int, PlainValidator(_positive_int)]
NonNegativeInt = Annotated[int, PlainValidator(_non_negative_int)]
Port = Annotated[int, PlainValidator(_port)]
Number = Annotated[float, PlainValidator(_number)]
PositiveNumber = Annotated[float, PlainValidator(_positive_number)]
NonNegativeNumber = Annotated[float, PlainValidator(_non_negative_number)]
Flag = Annotated[bool, PlainValidator(_flag)]
Text = Annotated[str, PlainValidator(_text)]
TextList = Annotated[list[str], PlainValidator(_text_list)]
TextOrList = Annotated[str | list[str], PlainValidator(_text_or_list)]
TextOrInt = Annotated[str | int, PlainValidator(_text_or_int)]
TextMap = Annotated[dict[str, str], PlainValidator(_text_map)]
AnyMap = Annotated[dict[str, Any], PlainValidator(_mapping)]
Fallbacks = Annotated[list[dict[str, list[str]]], PlainValidator(_fallbacks)]
QueueSize = Annotated[int | dict[str, int], PlainValidator(_queue_size)]
AliasMap = Annotated[dict[str, str | dict[str, Any]], PlainValidator(_alias_map)]


class Section(BaseModel):
    """Base of every config model: frozen, unknown keys dropped (they are reported separately).

    `accepted_unused` names LiteLLM keys laneway recognises but has no use for; they are logged
    at INFO instead of being warned about as unknown.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", protected_namespaces=())
    accepted_unused: ClassVar[frozenset[str]] = frozenset()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Unset fields are noise in logs; secret fields are excluded via Field(repr=False).
        return ((name, value) for name, value in super().__repr_args__() if value is not None)

    @model_validator(mode="before")
    @classmethod
    def _absent_when_null(cls, data: Any) -> Any:
        # `key:` with no value (or an unset optional env var) means "not given": defaults apply.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None or k not in cls.model_fields}
        return data
