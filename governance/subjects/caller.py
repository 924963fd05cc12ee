"""Who asks for a subject-rights use case, and through which door (for its audit record)."""

from __future__ import annotations

from dataclasses import dataclass

from governance.accounts.actor import Actor


@dataclass(frozen=True)
class Caller:
    """Who asks, and through which door (for the audit record)."""

    actor: Actor
    endpoint: str = "cli"
    request_id: str | None = None
