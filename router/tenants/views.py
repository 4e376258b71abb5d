"""Records as the management API shows them, in LiteLLM's field names: never the key itself
(only `token`, its SHA-256, and `key_name`, `sk-...` plus its last four characters)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from router.tenants.codec import limits_dict
from router.tenants.records import KeyRecord, TeamRecord
from router.tenants.store import Spend

__all__ = ["iso", "key_view", "team_view"]


def iso(moment: float | None) -> str | None:
    """Unix time → ISO 8601 in UTC, as LiteLLM writes `expires`."""
    if moment is None or not moment:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat()


def key_view(record: KeyRecord, spend: Spend) -> dict[str, Any]:
    return {
        "token": record.key_hash,
        "key_name": record.display,
        "key_alias": record.key_alias,
        "team_id": record.team_id,
        **limits_dict(record.limits),
        "spend": spend.amount,
        "budget_reset_at": iso(spend.reset_at),
        "expires": iso(record.expires),
        "created_at": iso(record.created_at),
        "blocked": record.blocked,
        "metadata": dict(record.metadata),
    }


def team_view(record: TeamRecord, spend: Spend) -> dict[str, Any]:
    return {
        "team_id": record.team_id,
        "team_alias": record.team_alias,
        **limits_dict(record.limits),
        "spend": spend.amount,
        "budget_reset_at": iso(spend.reset_at),
        "created_at": iso(record.created_at),
        "blocked": record.blocked,
        "metadata": dict(record.metadata),
    }
