"""The unit-of-work seam long-running operations need: short reads and writes on demand.

Backups and retraining do slow work (dumps, fits) between database steps, so
they take an object that opens a transaction per step instead of one session
held for the whole job (which on SQLite would hold the write lock for minutes).
The server's container satisfies it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy.orm import Session


class Transactions(Protocol):
    def read(self) -> AbstractContextManager[Session]:
        """A session whose work is rolled back at the end."""
        ...

    def write(self) -> AbstractContextManager[Session]:
        """A session committed when the block succeeds."""
        ...
