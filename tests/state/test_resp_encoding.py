"""What the Redis client writes for a command is what Redis reads back as its arguments, for
every kind of argument the state scripts pass (ids, numbers, bytes, text in any script)."""

from __future__ import annotations

import hiredis
from hypothesis import given
from hypothesis import strategies as st

from router.state.resp import _encode

argument = st.one_of(
    st.text(), st.binary(), st.integers(), st.booleans(), st.floats(allow_nan=False))


def _as_redis_reads(arg: object) -> bytes:
    if isinstance(arg, bytes):
        return arg
    return str(arg).encode()


@given(st.lists(argument, min_size=1, max_size=40))
def test_a_command_arrives_as_its_arguments(args: list[object]) -> None:
    reader = hiredis.Reader()
    reader.feed(_encode(tuple(args)))
    assert reader.gets() == [_as_redis_reads(a) for a in args]
    assert reader.gets() is False  # nothing more: one command, framed exactly
