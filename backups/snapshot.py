"""Consistent database snapshots and their restore: SQLite's online backup API, pg_dump.

Whatever the dialect, the snapshot comes with the facts read *inside the same
snapshot* (schema revision, audit head, signed checkpoints), so the manifest
describes exactly the database the backup holds. PostgreSQL: a REPEATABLE READ
transaction exports its snapshot and pg_dump dumps that very snapshot.
Credentials reach pg_dump/pg_restore through PG* variables, never argv.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from governance.errors import CofreError, Conflict, InvalidInput

SQLITE_MEMBER = "database/cofre.sqlite"
POSTGRES_MEMBER = "database/cofre.pgdump"
PG_TIMEOUT_SECONDS = 3600


class SnapshotFailed(CofreError):
    """The database could not be copied or restored (the reason says which tool failed)."""


@dataclass(frozen=True)
class DatabaseCopy:
    path: Path
    member: str
    dialect: str
    schema_revision: str
    audit_seq: int
    audit_head_hash: str
    checkpoints: list[dict[str, Any]]


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def take(database_url: str, staging: Path) -> DatabaseCopy:
    """Copy the live database into `staging`, with the facts of that copy."""
    if dialect_of(database_url) == "sqlite":
        return _take_sqlite(sqlite_path(database_url), staging / "cofre.sqlite")
    return _take_postgres(database_url, staging / "cofre.pgdump")


def _take_sqlite(source: Path, target: Path) -> DatabaseCopy:
    if not source.is_file():
        raise SnapshotFailed(f"the SQLite database {source} does not exist")
    live = sqlite3.connect(source, timeout=30)
    copy = sqlite3.connect(target)
    try:
        live.backup(copy)  # one step: the copy is one consistent state
        copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        facts = _facts(lambda sql: copy.execute(sql).fetchall())
    finally:
        copy.close()
        live.close()
    os.chmod(target, 0o600)
    return DatabaseCopy(target, SQLITE_MEMBER, "sqlite", *facts)


def _take_postgres(url: str, target: Path) -> DatabaseCopy:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                facts = _facts(_runner(conn))
                _pg_tool(
                    url,
                    [
                        "pg_dump",
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        f"--snapshot={snapshot}",
                        f"--file={target}",
                    ],
                )
    finally:
        engine.dispose()
    return DatabaseCopy(target, POSTGRES_MEMBER, "postgresql", *facts)


def _runner(conn: Connection) -> Callable[[str], Sequence[Any]]:
    return lambda sql: conn.execute(text(sql)).all()


def _facts(run: Callable[[str], Sequence[Any]]) -> tuple[str, int, str, list[dict[str, Any]]]:
    revisions = ",".join(sorted(str(r[0]) for r in run("SELECT version_num FROM alembic_version")))
    seq, head_hash = run("SELECT seq, hash FROM audit_head WHERE id = 1")[0]
    checkpoints = [
        {
            "format": "cofre-checkpoint-1",
            "seq": int(row[0]),
            "hash": row[1],
            "at": row[2],
            "public_key": row[3],
            "signature": row[4],
        }
        for row in run(
            "SELECT seq, hash, at, public_key, signature FROM audit_checkpoints ORDER BY id"
        )
    ]
    return revisions, int(seq), str(head_hash), checkpoints


def restore_database(dialect: str, dump: Path, home: Path, target_url: str | None) -> str:
    """Put the dumped database in place; return the URL of the restored database."""
    if dialect == "sqlite":
        if target_url and not target_url.startswith("sqlite:///"):
            raise InvalidInput("a SQLite backup restores into a directory, not onto PostgreSQL")
        target = sqlite_path(target_url) if target_url else home / "cofre.db"
        if target.exists():
            raise Conflict(f"{target} exists; restore only into an empty place")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(dump, target)
        os.chmod(target, 0o600)
        return f"sqlite:///{target}"
    if not target_url or not target_url.startswith("postgresql+psycopg://"):
        raise InvalidInput("a PostgreSQL backup needs an empty database URL to restore onto")
    _require_empty(target_url)
    _pg_tool(
        target_url,
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={make_url(target_url).database}",
            str(dump),
        ],
    )
    return target_url


def _require_empty(url: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            count = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    if count:
        raise Conflict("the target database is not empty; restore only onto an empty database")


def _pg_tool(url: str, argv: list[str]) -> None:
    tool = shutil.which(argv[0])
    if tool is None:
        raise SnapshotFailed(f"{argv[0]} is not installed (PostgreSQL client tools)")
    try:
        result = subprocess.run(
            [tool, *argv[1:]],
            env=_pg_environment(url),
            capture_output=True,
            text=True,
            timeout=PG_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SnapshotFailed(f"{argv[0]} did not finish in {PG_TIMEOUT_SECONDS} s") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise SnapshotFailed(f"{argv[0]} failed: {last[:300]}")


def _pg_environment(url: str) -> dict[str, str]:
    """libpq settings from a SQLAlchemy URL; the password travels here, not on argv."""
    parsed = make_url(url)
    env = {
        "PGHOST": parsed.host or "localhost",
        "PGPORT": str(parsed.port or 5432),
        "PGUSER": parsed.username or "",
        "PGDATABASE": parsed.database or "",
        "PGCONNECT_TIMEOUT": "10",
    }
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    if "sslmode" in parsed.query:
        env["PGSSLMODE"] = str(parsed.query["sslmode"])
    return env
