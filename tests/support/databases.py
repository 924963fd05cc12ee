"""Extra throw-away PostgreSQL databases (restore targets), beside conftest's own."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def empty_databases(server: str) -> Iterator[Callable[[], str]]:
    """Yields a factory of empty databases on `server`; drops them all afterwards."""
    made: list[str] = []
    base, _, _ = server.rpartition("/")

    def make() -> str:
        name = f"cofre_r_{secrets.token_hex(6)}"
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"{base}/{name}"

    try:
        yield make
    finally:
        with psycopg.connect(_libpq(server), autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
