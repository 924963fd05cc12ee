"""Which data key seals a subject's row: one key per subject x model version x UTC day.

One key per subject for all time would make erasure final (the person could
never be scored again) and retention impossible (shredding old rows would shred
the recent ones too). Scoping keys by subject, model version and day gives both
their share: erasure destroys every key of the pseudonym and the next scoring
opens a new one; retention destroys a key once the whole day it covers is past
its version's retention period, so rows are kept at most one day longer than
the period, never less.

A scope is stored as a digest (fixed width, indexable) while the key is live;
destroying the key clears it, which frees the scope for a new key (a new epoch).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class KeyScope:
    """The part of a key's scope shared by every row of one audit event."""

    model_name: str | None
    model_version: int | None
    window_end: datetime  # exclusive end of the UTC day the rows were written in

    def digest(self, pseudonym: str) -> str:
        text = "\x00".join(
            (
                pseudonym,
                self.model_name or "",
                str(self.model_version or 0),
                self.window_end.isoformat(),
            )
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scope_at(moment: datetime, model_name: str | None, model_version: int | None) -> KeyScope:
    """The scope of rows written at `moment` about `model_name` version `model_version`."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return KeyScope(model_name, model_version, day + WINDOW)
