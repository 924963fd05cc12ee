"""Retention: which backups to keep, N daily, N weekly, N monthly (grandfather-father-son).

Pure selection over (id, time, verified, drilled); the service deletes the rest.
The newest verified backup and the newest drilled one (restored and proven by a
restore drill) are always kept, whatever the counts say, so pruning can never
leave the appliance without a backup known to restore, nor throw away the only
one that was shown to.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Policy:
    daily: int
    weekly: int
    monthly: int


@dataclass(frozen=True)
class Candidate:
    id: str
    created_at: datetime
    verified: bool
    drilled: bool = False  # its latest restore drill passed


def to_keep(backups: Sequence[Candidate], policy: Policy) -> set[str]:
    """Ids to keep: the newest backup of each of the last N days, weeks and months."""
    newest_first = sorted(backups, key=lambda b: (b.created_at, b.id), reverse=True)
    keep: set[str] = set()
    keep |= _newest_per(newest_first, policy.daily, lambda b: b.created_at.date())
    keep |= _newest_per(newest_first, policy.weekly, lambda b: b.created_at.isocalendar()[:2])
    keep |= _newest_per(
        newest_first, policy.monthly, lambda b: (b.created_at.year, b.created_at.month)
    )
    for proven in (lambda b: b.verified, lambda b: b.drilled):
        newest = next((b for b in newest_first if proven(b)), None)
        if newest is not None:
            keep.add(newest.id)
    return keep


def _newest_per(
    newest_first: Sequence[Candidate], count: int, period: Callable[[Candidate], Hashable]
) -> set[str]:
    kept: dict[Hashable, str] = {}
    for backup in newest_first:
        key = period(backup)
        if key not in kept:
            if len(kept) == count:
                break
            kept[key] = backup.id
    return set(kept.values())
