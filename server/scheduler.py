"""The scheduler process (`cofre scheduler`): the single-instance lock and the loop
that runs the job catalogue (`server/jobs.py`) on its schedules.

APScheduler runs here, in its own process, never in Gunicorn workers (each
worker would run every job); this is the one module importing its schedulers.
Several schedulers may be started for availability; a single-instance lock lets
only one act (a PostgreSQL advisory lock, held by a dedicated connection, or an
fcntl lock on a file in the data directory for SQLite); the others wait and take
over when it goes away.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC
from typing import IO, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from governance.accounts.actor import SYSTEM
from governance.errors import InvalidInput
from governance.operations.jobs import RETRAIN_PREFIX
from server.config import Settings
from server.container import Container
from server.extension import EXTENSION
from server.jobs import parse_cron, retrain_work, run_recorded, runner_name, standard_jobs

log = logging.getLogger("cofre.scheduler")

# pg_advisory_lock key: "cofre-sc" as a signed 64-bit integer.
ADVISORY_KEY = int.from_bytes(b"cofre-sc", "big", signed=True)


# -- the single-instance lock --------------------------------------------------------------
class InstanceLock(Protocol):
    def try_acquire(self) -> bool: ...
    def held(self) -> bool: ...
    def release(self) -> None: ...


class FileLock:
    """fcntl lock on `<home>/scheduler.lock`: released by the kernel if the process dies."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def try_acquire(self) -> bool:
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the lock's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(runner_name() + "\n")
        handle.flush()
        self._handle = handle
        return True

    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class AdvisoryLock:
    """pg_try_advisory_lock on a connection kept open: the server frees it if we vanish."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except Exception:
            log.error("lost the scheduler lock's database connection")
            self._conn = None
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
            finally:
                self._conn.close()
                self._conn = None
        self.engine.dispose()


def make_lock(settings: Settings) -> InstanceLock:
    if settings.database_url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return FileLock(settings.home / "scheduler.lock")
    return AdvisoryLock(settings.database_url)


# -- the process ---------------------------------------------------------------------------
class Scheduler:
    """Waits for the lock, then runs the configured jobs and the retraining plans."""

    def __init__(self, app: Flask, stop: threading.Event) -> None:
        self.app = app
        self.stop = stop
        self.container: Container = app.extensions[EXTENSION]
        self.settings = self.container.settings
        self.specs = standard_jobs(self.settings)
        for spec in self.specs:
            parse_cron(spec.schedule)  # a bad schedule in config fails at start, not at 2 am
        self._plans: dict[str, str] = {}

    def serve(self) -> None:
        lock = make_lock(self.settings)
        announced = False
        while not self.stop.is_set():
            if lock.try_acquire():
                try:
                    self._act(lock)
                finally:
                    lock.release()
                announced = False
            else:
                if not announced:  # once per stand-by, not once per poll
                    log.info("scheduler %s standing by: another one holds the lock", runner_name())
                    announced = True
                self.stop.wait(self.settings.scheduler_poll_seconds)

    def _act(self, lock: InstanceLock) -> None:
        log.info("scheduler %s holds the lock and runs the jobs", runner_name())
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        )
        for spec in self.specs:
            self._add(scheduler, spec.name, spec.schedule, spec.work)
        self._sync_plans(scheduler)
        scheduler.start()
        try:
            while not self.stop.wait(self.settings.scheduler_poll_seconds):
                if not lock.held():
                    break
                self._sync_plans(scheduler)
        finally:
            scheduler.shutdown(wait=True)
            self._plans.clear()

    def _add(
        self,
        scheduler: BackgroundScheduler,
        name: str,
        schedule: str,
        work: Callable[[Container], str],
    ) -> None:
        scheduler.add_job(
            run_recorded,
            trigger=parse_cron(schedule),
            args=(self.app, name, work),
            kwargs={"scheduled": True, "stop": self.stop},
            id=name,
            name=name,
            replace_existing=True,
        )

    def _sync_plans(self, scheduler: BackgroundScheduler) -> None:
        """Keep one job per enabled retraining plan, following edits and deletions."""
        try:
            with self.container.read() as session:
                wanted = {
                    f"{RETRAIN_PREFIX}{p.id}": p.schedule
                    for p in self.container.retraining.plans(session, SYSTEM)
                    if p.enabled
                }
        except Exception:
            log.exception("could not read the retraining plans")
            return
        for name in set(self._plans) - set(wanted):
            scheduler.remove_job(name)
            del self._plans[name]
        for name, schedule in wanted.items():
            if self._plans.get(name) != schedule:
                try:
                    work = retrain_work(int(name[len(RETRAIN_PREFIX) :]))
                    self._add(scheduler, name, schedule, work)
                except InvalidInput as exc:
                    log.error("plan job %s not scheduled: %s", name, exc.detail)
                self._plans[name] = schedule
