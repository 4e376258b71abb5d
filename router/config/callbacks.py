"""Which `litellm_settings` callbacks laneway runs, and one warning per callback it does not."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router.config.settings import LitellmSettings

__all__ = ["CALLBACKS", "callback_warnings"]

CALLBACKS = ("langfuse", "webhook", "generic_api", "prometheus")
_LISTS = ("success_callback", "failure_callback", "callbacks")


def callback_warnings(settings: LitellmSettings) -> list[str]:
    """One line per unsupported callback name, at the first place it is listed.

    A LiteLLM config often names a callback under both success_callback and failure_callback
    (or under `callbacks`, which means both); that is still one callback laneway ignores.
    """
    places: dict[str, list[str]] = {}
    for key in _LISTS:
        for index, name in enumerate(getattr(settings, key) or ()):
            if name.strip().lower() not in CALLBACKS:
                places.setdefault(name.strip(), []).append(f"litellm_settings.{key}[{index}]")
    lines = []
    for name, paths in places.items():
        also = f"; also listed at {', '.join(paths[1:])}" if len(paths) > 1 else ""
        lines.append(f"{paths[0]}: callback '{name}' is not supported by laneway and is ignored "
                     f"(supported: {', '.join(CALLBACKS)}){also}")
    return lines
