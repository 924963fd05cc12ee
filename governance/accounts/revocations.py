"""Telling every worker that an API key was revoked, so they can cache the others.

Every API call authenticates its key. Reading the key's row each time costs a
database round trip per request; caching verified keys per worker is safe only
if a revocation reaches every worker before its next request: a broadcast
(governance/broadcasts.py: a generation file on this host, `NOTIFY
cofre_key_revoked` to the others). As a backstop against a lost signal, a cached
key is re-read at least every `MAX_AGE_SECONDS`.
"""

from __future__ import annotations

from pathlib import Path

from governance.broadcasts import Broadcast, Generation

CHANNEL = "cofre_key_revoked"
MAX_AGE_SECONDS = 30.0

__all__ = ["CHANNEL", "MAX_AGE_SECONDS", "Generation", "Revocations"]


class Revocations(Broadcast):
    """The revocation generation of this process, and the signal that moves it."""

    def __init__(self, path: Path, database_url: str) -> None:
        super().__init__(path, database_url, CHANNEL)
