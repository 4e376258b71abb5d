"""Four gateways, a line of random priorities in front of a limit of 4, clients that give up:
everyone is answered, nobody is overtaken by a less important request, nothing stays behind.
The same scenario at full size (4 x 1,000) is `bench/run.py --only load`."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.helpers import group_config
from tests.faults.storm import storm
from tests.support.cluster import fleet, unique

PER_GATEWAY = 60


@pytest.mark.timeout(180)
def test_storm_of_random_priorities_with_cancellations(redis_server, fake_openai) -> None:
    group = unique("storm4")
    model = f"{group}+gate={group}+delay=0.005"
    cfg = group_config(redis_server.url, fake_openai, group, model, parallel=4,
                       max_queue_size=-1, timeout=120)
    with fleet(cfg, n=4) as gws:
        result = asyncio.run(storm(gws, fake_openai, redis_server.url, group, model,
                                   n=4 * PER_GATEWAY, limit=4))
    print(result.summary())
    assert result.lined_up and set(result.statuses) <= {200, 408, 429}, result.summary()
    assert result.cancelled > 0 and result.statuses[200] > 0, result.summary()
    assert sum(result.statuses.values()) + result.cancelled == 4 * PER_GATEWAY
    # The log saw the whole storm: everyone but the first four waited, everyone served was
    # admitted.
    assert result.entered >= 4 * PER_GATEWAY - 4 and result.admissions >= result.statuses[200]
    assert result.inversions == 0, result.summary()
    assert result.peak <= 4, result.summary()
    assert result.leftovers == [], result.leftovers
