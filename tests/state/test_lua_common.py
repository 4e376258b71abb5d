"""The helpers every script shares (lua/common.lua), run in a real redis-server."""

from __future__ import annotations

import pytest

from router.state.resp import RespClient
from router.state.scripts import _read, script_of

pytestmark = pytest.mark.asyncio(loop_scope="function")


async def _run(url: str, body: str, args: list[object]) -> object:
    c = RespClient(url, connect_timeout=1.0, op_timeout=5.0)
    try:
        return await c.run_script(script_of(body, _read("common.lua")), [], args)
    finally:
        c.close()


async def test_int_writes_whole_numbers_exactly_and_rounds_the_rest(redis_server) -> None:
    values = ["0", "-0", "7", "-7", "8589934592000123", "4503599627370497", "9007199254740993",
              "1.5", "2.5", "-2.5", "1e15"]
    got = await _run(redis_server.url, """
      local out = {}
      for i, v in ipairs(ARGV) do out[i] = int(tonumber(v)) end
      return out""", values)
    # -0 as "0": Redis refuses "-0" as an integer. Past 2^52 '%.0f' as before; halves to even.
    assert [x.decode() for x in got] == [  # type: ignore[union-attr]
        "0", "0", "7", "-7", "8589934592000123", "4503599627370497", "9007199254740992",
        "2", "2", "-2", "1000000000000000"]


@pytest.mark.parametrize("size", [3, 3999, 4001, 9000])
async def test_slice_copies_any_range_even_past_luas_stack(redis_server, size: int) -> None:
    got = await _run(redis_server.url, """
      local t = slice(ARGV, 2, #ARGV)
      return {#t, t[1], t[#t]}""", ["skip", *range(1, size + 1)])
    assert [int(x) for x in got] == [size, 1, size]  # type: ignore[union-attr]
