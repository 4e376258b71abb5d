"""A gateway with nothing to serve is a mistake in its config, not a server to start."""

from __future__ import annotations

from collections.abc import Sized
from typing import TYPE_CHECKING

from router.errors import ConfigError

if TYPE_CHECKING:
    from router.config.schema import Config

__all__ = ["require_models"]


def require_models(config: Config, deployments: Sized) -> None:
    """Raise a ConfigError explaining why `config` serves no deployment, if it serves none.

    `deployments` is what the engine built (after the environment filter)."""
    if len(deployments):
        return
    where = f"config {config.source}"
    if not config.model_list:
        raise ConfigError(f"{where} serves no models: model_list is empty or missing "
                          "(add at least one deployment, or include: a file that has them)")
    name = "LANEWAY_ENVIRONMENT" if config.env.get("LANEWAY_ENVIRONMENT") else (
        "LITELLM_ENVIRONMENT")
    environment = config.env.get(name, "")
    listed = sorted({env for entry in config.model_list
                     for env in entry.model_info.supported_environments or ()})
    raise ConfigError(
        f"{where} serves no models in environment '{environment}' ({name}): every "
        f"model_list entry's model_info.supported_environments leaves it out (they list: "
        f"{', '.join(listed) or 'nothing'})")
