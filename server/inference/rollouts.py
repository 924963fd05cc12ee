"""A worker's side of rollouts: the running rollouts as it knows them, what it
counted of each variant, and its shadow work.

* **Plans** are read once per model and kept until the rollout broadcast moves
  (governance/broadcasts.py: start, abort and promote are seen by the next request
  of every worker); while the broadcast cannot be trusted, a plan is re-read at
  most every `FALLBACK_TTL_SECONDS`.
* **Tallies** (requests, errors, latency, agreement) are counted in memory and
  appended to the database by this worker's rollout thread every `FLUSH_SECONDS`;
  right after, the thread checks the guardrails of the rollouts it reported on, so
  a breach aborts the rollout within seconds whichever worker saw it.
* **Shadow work** (the other variant scoring a request's rows, for agreement and
  for shadow rollouts) goes into a bounded queue that the same thread drains. A
  full queue drops the work and counts it; the answer never waits for it.

The thread is started on first use in the process that uses it (after Gunicorn's
fork), like the audit writer's.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from governance.accounts.actor import Actor
from governance.broadcasts import Broadcast, Generation
from governance.clock import utcnow
from governance.db import read_session, write_transaction
from governance.rollouts.records import RolloutTally
from governance.rollouts.reports import RolloutReports
from governance.rollouts.routing import CANDIDATE, Plan
from governance.rollouts.service import Rollouts
from governance.rollouts.statistics import bucket
from server import metrics

log = logging.getLogger("cofre.rollouts")
FLUSH_SECONDS = 1.0
FALLBACK_TTL_SECONDS = 1.0
GUARDRAIL_ACTOR = Actor(type="system", id="guardrail", role="admin", name="guardrail")


class _Folded(Exception):
    """Another process folded the same tallies first."""


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    compared: int = 0
    agreed: int = 0
    dropped: int = 0
    latency: dict[str, int] = field(default_factory=dict)


class RolloutTraffic:
    """One per worker; thread-safe."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        rollouts: Rollouts,
        reports: RolloutReports,
        broadcast: Broadcast,
        queue_size: int,
    ) -> None:
        self.sessions = sessions
        self.rollouts = rollouts
        self.reports = reports
        self.broadcast = broadcast
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._plans: dict[str, tuple[float, Plan | None]] = {}
        self._generation: Generation | None = None
        self._tallies: dict[tuple[int, str], _Tally] = {}
        self._models: dict[int, str] = {}
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue(queue_size)
        self._owner_pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.on_change: list[Callable[[], None]] = []

    # -- plans --------------------------------------------------------------------------
    def plan(self, model: str) -> Plan | None:
        """The running rollout of `model` as of the latest broadcast."""
        generation = self.broadcast.generation()
        now = time.monotonic()
        with self._lock:
            if generation is None or generation != self._generation:
                changed = generation != self._generation
                self._generation = generation
                if changed:
                    self._plans.clear()
            else:
                changed = False
            cached = self._plans.get(model)
        if changed:
            for callback in self.on_change:
                callback()
        if cached is not None and (
            generation is not None or now - cached[0] < FALLBACK_TTL_SECONDS
        ):
            return cached[1]
        with read_session(self.sessions) as session:
            plan = self.rollouts.plan(session, model)
        with self._lock:
            self._plans[model] = (now, plan)
        return plan

    # -- counting -----------------------------------------------------------------------
    def count(self, plan: Plan, variant: str, reason: str, seconds: float, error: bool) -> None:
        metrics.ROLLOUT_REQUESTS.labels(plan.model, variant, reason).inc()
        self._ensure_thread()  # first: in a fresh process it starts from empty tallies
        with self._lock:
            tally = self._tally(plan, variant)
            tally.requests += 1
            tally.errors += int(error)
            key = bucket(seconds * 1000)
            tally.latency[key] = tally.latency.get(key, 0) + 1

    def compared(self, plan: Plan, rows: int, agreed: int) -> None:
        with self._lock:
            tally = self._tally(plan, CANDIDATE)
            tally.compared += rows
            tally.agreed += agreed

    def _tally(self, plan: Plan, variant: str) -> _Tally:
        self._models[plan.id] = plan.model
        return self._tallies.setdefault((plan.id, variant), _Tally())

    # -- shadow work --------------------------------------------------------------------
    def submit(self, plan: Plan, work: Callable[[], None]) -> bool:
        """Queue `work` off the request's path; False (dropped, counted) when full."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(work)
            return True
        except queue.Full:
            metrics.SHADOW_DROPPED.labels(plan.model).inc()
            with self._lock:
                self._tally(plan, CANDIDATE).dropped += 1
            return False

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until the queued shadow work is done and the tallies are written (tests,
        benchmarks, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        self.flush()

    # -- the thread ---------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._owner_pid = os.getpid()
            self._queue = queue.Queue(self.queue_size)
            self._tallies.clear()
            self._thread = threading.Thread(target=self._run, name="cofre-rollouts", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write what was counted and stop the thread (the app is shutting down)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and self._owner_pid == os.getpid():
            thread.join(timeout)
            self._safely(self.flush)

    def _run(self) -> None:
        next_flush = time.monotonic() + FLUSH_SECONDS
        while not self._stop.is_set():
            try:
                wait = min(0.25, max(0.0, next_flush - time.monotonic()))
                work = self._queue.get(timeout=wait)
            except queue.Empty:
                work = None
            if work is not None:
                self._do(work)
            if time.monotonic() >= next_flush:
                self._safely(self.flush)
                next_flush = time.monotonic() + FLUSH_SECONDS

    def _do(self, work: Callable[[], None]) -> None:
        try:
            self._safely(work)
        finally:
            self._queue.task_done()

    @staticmethod
    def _safely(action: Callable[[], None]) -> None:
        try:
            action()
        except Exception:  # the rollout thread must never die
            log.exception("rollout work failed")

    def flush(self) -> None:
        """Append what was counted since the last flush, then check the guardrails of
        the rollouts it concerns."""
        with self._lock:
            counted, self._tallies = self._tallies, {}
            models = dict(self._models)
        if not counted:
            return
        now = utcnow()
        rows = [
            RolloutTally(
                rollout_id=rollout_id,
                variant=variant,
                reported_at=now,
                requests=t.requests,
                errors=t.errors,
                compared=t.compared,
                agreed=t.agreed,
                dropped=t.dropped,
                latency=t.latency,
            )
            for (rollout_id, variant), t in counted.items()
        ]
        with write_transaction(self.sessions) as session:
            self.rollouts.report(session, rows)
        for rollout_id in sorted({rollout_id for rollout_id, _ in counted}):
            self._check(rollout_id, models.get(rollout_id, ""))

    def _check(self, rollout_id: int, model: str) -> None:
        try:
            with write_transaction(self.sessions) as session:
                if not self.rollouts.compact(session, rollout_id):
                    raise _Folded
        except _Folded:
            pass  # another worker folded them first; its fold stands, ours rolled back
        with write_transaction(self.sessions) as session:
            reason = self.reports.check(session, GUARDRAIL_ACTOR, rollout_id)
        if reason is not None:
            metrics.ROLLOUT_ABORTS.labels(model).inc()
            log.warning("rollout %s of %s aborted: %s", rollout_id, model, reason)
