"""The state backends the dashboard's read operations are checked on (as tests/state does)."""

from tests.state.conftest import backend

__all__ = ["backend"]
