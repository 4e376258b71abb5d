"""Every Redis key name laneway uses, built in one place.

All keys of one model group share the hash tag `{<group>}` so that each script touches a single
slot and runs on Redis Cluster. The `v1` in the prefix versions the layout: a deploy that changes
it bumps the version, so two releases never read each other's data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

LAYOUT = "v1"
PREFIX = f"lw:{LAYOUT}"
WAKE_CHANNEL = f"{PREFIX}:wake"

__all__ = ["PREFIX", "WAKE_CHANNEL", "DeploymentKeys", "GroupKeys"]


def _tag(group: str) -> str:
    # Braces inside a name would end the hash tag early; such names use a digest instead.
    if "{" in group or "}" in group:
        return "h:" + hashlib.sha1(group.encode()).hexdigest()[:16]
    return group


@dataclass(frozen=True, slots=True)
class DeploymentKeys:
    rpm: str
    tpm: str
    tok: str
    run: str
    fails: str


@dataclass(frozen=True, slots=True)
class GroupKeys:
    base: str

    @classmethod
    def of(cls, group: str) -> GroupKeys:
        return cls(f"{PREFIX}:{{{_tag(group)}}}")

    @property
    def line(self) -> str:
        return f"{self.base}:line"

    @property
    def wlease(self) -> str:
        return f"{self.base}:wlease"

    @property
    def wmeta(self) -> str:
        return f"{self.base}:wmeta"

    @property
    def seq(self) -> str:
        return f"{self.base}:seq"

    @property
    def health(self) -> str:
        return f"{self.base}:health"

    def deployment(self, deployment_id: str) -> DeploymentKeys:
        d = f"{self.base}:d:{deployment_id}"
        return DeploymentKeys(f"{d}:rpm", f"{d}:tpm", f"{d}:tok", f"{d}:run", f"{d}:fails")
