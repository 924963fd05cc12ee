"""Helpers the admin templates call: times in UTC with the offset, permissions, CSRF."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from governance.accounts.roles import allows
from server.security.access import current_actor
from server.security.sessions import current_csrf_token


def utc(moment: datetime | str | None) -> str:
    """'2026-11-21 23:08:01 UTC+00:00' from an aware datetime or the log's canonical text."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC+00:00")


def short(text: str | None, length: int = 12) -> str:
    if not text:
        return "—"
    return text if len(text) <= length else text[:length] + "…"


def can(permission: str) -> bool:
    """For choosing which links to show; the guard, not this, enforces access."""
    return allows(current_actor().role, permission)


def template_context() -> dict[str, Any]:
    actor = current_actor()
    signed_in = actor.type in ("user", "key")
    return {
        "actor": actor,
        "signed_in": signed_in,
        "csrf_token": current_csrf_token(),
        "can": can,
    }
