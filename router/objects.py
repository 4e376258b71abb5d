"""OpenAI-shaped response objects for the Python API: dicts that also allow attribute access,
so both `resp["choices"][0]` and `resp.choices[0].message.content` work."""

from __future__ import annotations

from typing import Any

__all__ = ["OpenAIObject", "wrap"]


class OpenAIObject(dict[str, Any]):
    def __getattr__(self, name: str) -> Any:
        # Like the OpenAI SDK's models, a field the response left out reads as None
        # (a stream's last delta has no `content`).
        if name.startswith("__"):
            raise AttributeError(name)
        return wrap(self.get(name))

    def __getitem__(self, key: str) -> Any:
        return wrap(super().__getitem__(key))

    def model_dump(self) -> dict[str, Any]:
        return dict(self)


def wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, OpenAIObject):
        return OpenAIObject(value)
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value
