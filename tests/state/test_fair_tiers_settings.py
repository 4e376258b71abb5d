"""`priority_reservation` and `priority_aging` as the config gives them to the engine."""

from __future__ import annotations

import pytest

from router.config import parse_config
from router.errors import ConfigError
from router.options import RouterOptions


@pytest.mark.parametrize("bad", [{"prod": 0.9, "dev": 0.2}, {"prod": 1.5}, {"prod": "high"},
                                 {}, ["prod"]])
def test_a_reservation_that_cannot_hold_is_refused_at_load(bad: object) -> None:
    with pytest.raises(ConfigError, match="priority_reservation"):
        parse_config({"router_settings": {"priority_reservation": bad}})


def test_tiers_come_from_the_config_with_default_last() -> None:
    config = parse_config({"litellm_settings": {"priority_reservation": {"prod": 0.75}},
                           "router_settings": {"priority_aging": 30}})
    options = RouterOptions.from_settings({
        **config.litellm_settings.model_dump(exclude_none=True),
        **config.router_settings.model_dump(exclude_none=True)})
    assert options.priority_reservation == (("prod", 0.75), ("default", 0.25))
    assert (options.tier_of("prod"), options.tier_of("nightly"), options.tier_of(None)) == (
        0, 1, 1)
    assert options.priority_aging == 30
