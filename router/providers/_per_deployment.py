"""What an adapter builds once from a deployment's params (its headers, a signer, a credential),
kept per deployment id.

A reload that changes a deployment's params builds the thing again: deployment ids leave
credentials out, so an id alone would keep sending a rotated key. At most `limit` are kept
(wildcard deployments are made per model name a client sends).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from router.groups import Deployment

__all__ = ["PerDeployment"]

T = TypeVar("T")


class PerDeployment(Generic[T]):
    """`per_model`: what is built depends on the model too. A wildcard group's deployments
    share their template's id and params, one per model name asked for."""

    __slots__ = ("_build", "_built", "_limit", "_per_model")

    def __init__(self, build: Callable[[Deployment], T], limit: int = 4096,
                 per_model: bool = False) -> None:
        self._build = build
        self._built: dict[Any, tuple[Any, T]] = {}
        self._limit = limit
        self._per_model = per_model

    def __call__(self, dep: Deployment) -> T:
        key = (dep.id, dep.model) if self._per_model else dep.id
        hit = self._built.get(key)
        if hit is None or hit[0] is not dep.params:
            if len(self._built) >= self._limit:
                self._built.clear()
            hit = self._built[key] = (dep.params, self._build(dep))
        return hit[1]
