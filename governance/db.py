"""Database plumbing shared by every service: the declarative base, engines, sessions.

One code path for SQLite (the embedded default) and PostgreSQL (production); the
URL alone chooses. SQLite is tuned for durability and multi-process writers:
WAL journal, synchronous=FULL (a committed audit record survives power loss) and
a busy timeout so writers from several Gunicorn workers queue instead of failing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """The single declarative base; every `records.py` class derives from it."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, *, db_lock_timeout_ms: int = 5_000, echo: bool = False) -> Engine:
    """Create the engine for `url`.

    `db_lock_timeout_ms` bounds how long a writer waits for a lock (SQLite's busy
    timeout, PostgreSQL's lock_timeout): past it the write fails, and a
    prediction whose audit record cannot be written is refused, not delayed
    without end.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, connect_args={"timeout": db_lock_timeout_ms / 1000})
        event.listen(engine, "connect", _sqlite_pragmas(db_lock_timeout_ms))
        # pysqlite's own transaction handling defers BEGIN; take it over so that
        # `BEGIN IMMEDIATE` can be issued where a write lock is needed up front.
        event.listen(engine, "begin", _sqlite_begin)
        engine.update_execution_options(cofre_write_timeout_ms=db_lock_timeout_ms)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={
            "options": f"-c lock_timeout={int(db_lock_timeout_ms)}",
            "connect_timeout": max(1, db_lock_timeout_ms // 1000),
        },
    )


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    return on_connect


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    # Straight to the driver: this runs on every transaction, and SQLAlchemy's
    # statement machinery would cost more than the BEGIN itself.
    connection.connection.dbapi_connection.execute(f"BEGIN {mode}")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (views render them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def write_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work that writes: commit on success, roll back on any error.

    On SQLite it starts with BEGIN IMMEDIATE, taking the write lock up front: a
    deferred transaction that reads and then writes can fail at once with
    "database is locked" when another process wrote in between, whereas an
    immediate one waits (busy_timeout) for its turn.
    """
    with _sqlite_writers_queue(factory), factory() as session:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            session.info.pop(_AFTER_COMMIT, None)
            _run_undo_actions(session)
            raise
        session.info.pop(_UNDO_ON_ROLLBACK, None)
        _run_after_commit(session)


_UNDO_ON_ROLLBACK = "cofre_undo_on_rollback"
_AFTER_COMMIT = "cofre_after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Have `action` run once this write transaction has committed (never if it rolls
    back): telling other processes about a change they must not see before it is
    durable, such as a revoked key."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        try:
            action()
        except Exception:
            logger.exception("an action after a commit failed")


def undo_on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Have `undo` run if this write transaction rolls back, the commit included.

    For what a unit of work does outside the database before it commits (an
    encrypted artifact file written for a version row): a failed commit must not
    leave it behind, unreferenced.
    """
    session.info.setdefault(_UNDO_ON_ROLLBACK, []).append(undo)


def _run_undo_actions(session: Session) -> None:
    for undo in reversed(session.info.pop(_UNDO_ON_ROLLBACK, [])):
        try:
            undo()
        except Exception:
            logger.exception("an undo action after a rollback failed")


@contextmanager
def _sqlite_writers_queue(factory: sessionmaker[Session]) -> Iterator[None]:
    """On SQLite, writers from every process take turns on an flock first.

    SQLite's own busy handler sleeps in growing steps (up to 100 ms) while another
    process holds the write lock, which under load turns into long tail latency.
    A waiter here tries the flock every 0.5 ms. The wait is bounded by the same
    lock timeout; past it the write fails as a locked database would. Writers
    outside cofre still meet SQLite's busy timeout behind this.
    """
    engine = factory.kw.get("bind")
    path = engine.url.database if engine is not None and engine.dialect.name == "sqlite" else None
    if engine is None or not path or path == ":memory:":
        yield
        return
    timeout_ms = engine.get_execution_options().get("cofre_write_timeout_ms", 5_000)
    fd = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _flock_within(fd, time.monotonic() + timeout_ms / 1000)
        yield
    finally:
        os.close(fd)  # also releases the lock


def _flock_within(fd: int, deadline: float) -> None:
    # Polled, since flock has no timeout, and never blocking: a batch whose callers
    # were told 503 must not be committed later. Steps growing from 50 us to 1 ms
    # measured no different from this fixed 0.5 ms (py-spy, 2026-12-08): a waiting
    # worker still spends 30-50 % of its writer's time here under load, which only
    # one writer for all workers removes (bench/README, "What caps cofre").
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OperationalError(
                    "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
                ) from None
            time.sleep(0.0005)


@contextmanager
def read_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reading; whatever it began is rolled back at the end.

    Closing (not `rollback()`) ends the transaction: the connection goes back to
    the pool rolled back, and the objects read stay loaded (detached) for the
    caller to render after the block, instead of being expired.
    """
    with factory() as session:
        yield session
