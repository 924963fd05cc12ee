"""The job catalogue: every scheduled job's spec, its work, how a run is recorded,
and cron parsing. The scheduler process (`server/scheduler.py`) runs these on
their schedules; `cofre jobs run`, the operations API and the pages run and list
them without APScheduler's schedulers, which only `server/scheduler.py` imports.

Every run is recorded in `job_runs` inside an app context; a failing job is
retried per config, logged, recorded as failed, and never stops the scheduler.
Cron expressions are standard (5 fields, 0 or 7 = Sunday), or 6 fields with
seconds first; times are UTC.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from flask import Flask

from governance.accounts.actor import SYSTEM, Actor
from governance.clock import utcnow
from governance.errors import CofreError, FieldError, InvalidInput
from governance.identifiers import parse_id, parse_number
from governance.monitoring.alerts import Transition
from governance.operations.jobs import (
    ALERT_DELIVERY_JOB,
    ALERT_RETRAINING_JOB,
    BACKUP_JOB,
    CHECKPOINT_JOB,
    DRILL_JOB,
    EXTRACTION_JOB,
    MONITORING_JOB,
    RETENTION_JOB,
    RETRAIN_PREFIX,
    STORAGE_JOB,
    RunEnd,
)
from governance.operations.storage import human_bytes
from server.config import Settings
from server.container import Container
from server.extension import EXTENSION

log = logging.getLogger("cofre.scheduler")  # job runs are the scheduler's log lines

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


# -- cron -------------------------------------------------------------------------------
def parse_cron(expression: str) -> CronTrigger:
    """A CronTrigger for a standard crontab line (or one with a leading seconds field)."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise InvalidInput(
            f"{expression!r} is not a cron expression",
            [FieldError("schedule", "5 fields (min hour day month weekday), or 6 with seconds")],
        )
    second = fields.pop(0) if len(fields) == 6 else "0"
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(weekday),
            timezone=UTC,
        )
    except ValueError as exc:
        raise InvalidInput(
            f"{expression!r} is not a valid cron expression", [FieldError("schedule", str(exc))]
        ) from None


def _crontab_weekdays(field: str) -> str:
    """Crontab counts weekdays from Sunday = 0; APScheduler 3 from Monday = 0: use names."""
    parts = []
    for part in field.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/", 1)
            step = "/" + step
        low, _, high = part.partition("-")
        if parse_number(low) is None or (high and parse_number(high) is None):
            parts.append(part + step)
        elif high and int(low) == 0 and int(high) != 0:
            parts += (
                ["sun", f"mon-{_WEEKDAYS[int(high)]}{step}"] if int(high) > 1 else ["sun", "mon"]
            )
        else:
            parts.append(_WEEKDAYS[int(low)] + (f"-{_WEEKDAYS[int(high)]}" if high else "") + step)
    return ",".join(parts)


# -- jobs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobSpec:
    name: str
    schedule: str
    work: Callable[[Container], str]


def standard_jobs(settings: Settings) -> list[JobSpec]:
    specs = [
        JobSpec(BACKUP_JOB, settings.backup_schedule, backup_work),
        JobSpec(DRILL_JOB, settings.backup_drill_schedule, drill_work),
        JobSpec(CHECKPOINT_JOB, settings.checkpoint_schedule, checkpoint_work),
        JobSpec(RETENTION_JOB, settings.retention_schedule, retention_work),
        JobSpec(MONITORING_JOB, settings.monitoring_schedule, monitoring_work),
        JobSpec(ALERT_RETRAINING_JOB, settings.alert_delivery_schedule, alert_retraining_work),
        JobSpec(STORAGE_JOB, settings.storage_schedule, storage_work),
        JobSpec(EXTRACTION_JOB, settings.extraction_schedule, extraction_work),
    ]
    if settings.alert_webhook_url:
        specs.append(
            JobSpec(ALERT_DELIVERY_JOB, settings.alert_delivery_schedule, alert_delivery_work)
        )
    return specs


def checkpoint_work(container: Container) -> str:
    """Sign the audit log's head, so later truncation or rewriting can be shown; a chain
    that does not verify (since the last checkpoint) fails the run instead."""
    checkpoint, state = container.checkpoints.sign_verified()
    return (
        f"verified records {state.from_seq + 1}..{state.seq}; signed checkpoint at {checkpoint.seq}"
    )


def storage_work(container: Container) -> str:
    """Free space of every directory the appliance writes: a `disk` alert for each file
    system under the floor, resolved once space is back."""
    storage = container.storage
    spaces = storage.spaces()
    with container.write() as session:
        transitions = container.alerts.judge_storage(
            session, storage.low_disks(spaces), storage.policy
        )
    free = ", ".join(f"{s.directory} {human_bytes(s.free_bytes)} free" for s in spaces)
    changed = "; ".join(f"alert {t.alert_id} {t.state}" for t in transitions)
    return f"{free}{'; ' + changed if changed else ''}"


def extraction_work(container: Container) -> str:
    """Every API key's recent traffic judged for sweeps of the input space: an
    `extraction` alert for each suspicious key (throttled when configured), resolved
    once its traffic looks ordinary again."""
    detector = container.extraction
    with container.read() as session:  # opening the rows is the long part
        findings = detector.scan(session)
    with container.write() as session:
        transitions = detector.judge(session, findings)
    suspicious = sum(1 for f in findings if f.signals)
    summary = f"{len(findings)} key(s) judged, {suspicious} suspicious"
    return summary + _alert_summary(transitions)


def retention_work(container: Container) -> str:
    """Shred the data keys of rows past their version's retention period (holds spared),
    and of retired versions' artifacts past theirs."""
    with container.write() as session:
        report = container.retention.run(session, SYSTEM)
    artifacts = f"; artifacts shredded: {', '.join(report.artifacts)}" if report.artifacts else ""
    return f"shredded {report.shredded} data keys past their retention period{artifacts}"


def monitoring_work(container: Container) -> str:
    """Every served version's drift, quality, performance and traffic over the window,
    stored as rollups (`Monitoring.run_due`), then the alert rules judged on them."""
    with container.read() as session:  # results are written in short transactions
        reports = container.monitoring.run_due(session, container.monitoring_window)
    transitions = evaluate_alerts(container, [(r["model"], r["version"]) for r in reports])
    drifting = sorted(
        {
            f"{r['model']} v{r['version']}: {', '.join(r['drifting'])}"
            for r in reports
            if r["drifting"]
        }
    )
    summary = f"{len(reports)} report(s) stored"
    summary += f"; drifting: {'; '.join(drifting)}" if drifting else "; no drift"
    return summary + _alert_summary(transitions)


def _alert_summary(transitions: list[Transition]) -> str:
    fired = sum(1 for t in transitions if t.state == "firing")
    resolved = len(transitions) - fired
    return f"; alerts: {fired} fired, {resolved} resolved" if transitions else ""


def backup_work(container: Container) -> str:
    """Back up (write, verify, mirror), then prune by retention."""
    entry = container.backups.run(SYSTEM)
    pruned = container.backups.prune(SYSTEM)
    return f"backup {entry.id} ({entry.size} bytes) verified; pruned {len(pruned)}"


def drill_work(container: Container) -> str:
    report = container.backups.drill(SYSTEM)
    return (
        f"restored {report.backup_id} in {report.seconds:.2f} s: {report.models_loaded} "
        f"model versions loaded, audit verified to {report.audit_seq}"
    )


def retrain_work(plan_id: int) -> Callable[[Container], str]:
    def work(container: Container) -> str:
        run = container.retraining.run(plan_id, SYSTEM)
        message = f"run {run.id}: {run.decision}: {run.reason}"
        if run.decision == "failed":
            raise CofreError(message)
        return message

    return work


def evaluate_alerts(
    container: Container, versions: Iterable[tuple[str, int]], actor: Actor = SYSTEM
) -> list[Transition]:
    """Judge the rules of each (model, version) whose report was just stored, in one
    transaction after the one that stored the reports: what the monitoring job and
    `cofre monitor` call, so both evaluate exactly alike."""
    with container.write() as session:
        return [
            transition
            for name, version in dict.fromkeys(versions)
            for transition in container.alerts.evaluate(session, name, version, actor)
        ]


def alert_delivery_work(container: Container) -> str:
    """POST due alert transitions to the webhook; failures wait their backoff."""
    return "webhook: " + container.alert_deliveries.deliver_webhooks().summary()


def alert_retraining_work(container: Container) -> str:
    """Run each retraining plan an alert fired for, once per pass however many fired;
    the plan's own gates decide, and a run never moves `production`."""
    deliveries = container.alert_deliveries
    with container.read() as session:
        due: dict[int, list[tuple[int, int]]] = {}
        for row in deliveries.due(session, "retrain"):
            # Retraining rows always come from an alert (lifecycle events are webhooks only).
            due.setdefault(row.plan_id or 0, []).append((row.id, row.alert_id or 0))
    done: list[str] = []
    for plan_id, rows in due.items():
        trigger = "alert " + ", ".join(str(alert) for _, alert in rows)
        try:
            run = container.retraining.run(plan_id, SYSTEM, trigger=trigger)
            problem, done = None, [*done, f"plan {plan_id} run {run.id}: {run.decision}"]
        except CofreError as exc:
            problem, done = exc.detail, [*done, f"plan {plan_id}: {exc.detail}"]
        with container.write() as session:
            for delivery_id, _ in rows:
                deliveries.record(session, delivery_id, problem, retry=False)
    return "; ".join(done) or "no alert waiting for a retraining"


def job_work(container: Container, name: str) -> Callable[[Container], str]:
    """The work of a job by name (for `cofre jobs run`)."""
    for spec in standard_jobs(container.settings):
        if spec.name == name:
            return spec.work
    plan_id = parse_id(name.removeprefix(RETRAIN_PREFIX))
    if name.startswith(RETRAIN_PREFIX) and plan_id is not None:
        return retrain_work(plan_id)
    raise InvalidInput(
        f"unknown job {name!r}: backup, restore-drill, audit-checkpoint, retention, "
        "monitoring, storage, extraction, alert-retraining, alert-delivery (with a "
        "webhook) or retrain:<plan id>"
    )


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_recorded(
    app: Flask,
    name: str,
    work: Callable[[Container], str],
    *,
    scheduled: bool = False,
    stop: threading.Event | None = None,
    retries: int | None = None,
) -> RunEnd:
    """Run `work` in an app context with retries (the configured number unless
    `retries` says otherwise); record the run; never raise."""
    with app.app_context():
        container: Container = app.extensions[EXTENSION]
        settings = container.settings
        fired = utcnow().replace(microsecond=0) if scheduled else None
        run_id = _open_run(container, name, fired)
        allowed = settings.job_retries if retries is None else retries
        end = _attempts(container, name, work, allowed, settings, stop or threading.Event())
        _close_run(container, run_id, end)
        return end


def _attempts(
    container: Container,
    name: str,
    work: Callable[[Container], str],
    retries: int,
    settings: Settings,
    stop: threading.Event,
) -> RunEnd:
    attempt = 0
    while True:
        attempt += 1
        try:
            message = work(container)
        except Exception as exc:  # a job's failure is data, never the scheduler's death
            reason = exc.detail if isinstance(exc, CofreError) else f"{type(exc).__name__}: {exc}"
            if attempt > retries or stop.is_set():
                log.error("job %s failed after %d attempt(s): %s", name, attempt, reason)
                return RunEnd("failed", reason, attempt)
            log.warning("job %s attempt %d failed, retrying: %s", name, attempt, reason)
            stop.wait(settings.job_retry_delay_seconds)
        else:
            log.info("job %s ok: %s", name, message)
            return RunEnd("ok", message, attempt)


def _open_run(container: Container, name: str, fired: object) -> int | None:
    try:
        with container.write() as session:
            return container.jobs.open(session, name, runner_name(), fired).id  # type: ignore[arg-type]
    except Exception:
        log.exception("could not record the start of job %s", name)
        return None


def _close_run(container: Container, run_id: int | None, end: RunEnd) -> None:
    if run_id is None:
        return
    try:
        with container.write() as session:
            container.jobs.close(session, run_id, end)
    except Exception:
        log.exception("could not record the end of job run %s", run_id)


def job_table(container: Container) -> list[dict[str, Any]]:
    """Every scheduled job (configured ones and one per enabled plan), with its next
    firing and its latest run."""
    specs = [(s.name, s.schedule) for s in standard_jobs(container.settings)]
    with container.read() as session:
        specs += [
            (f"{RETRAIN_PREFIX}{p.id}", p.schedule)
            for p in container.retraining.plans(session, SYSTEM)
            if p.enabled
        ]
        rows = []
        for name, schedule in specs:
            latest = container.jobs.latest(session, name)
            rows.append(
                {
                    "job": name,
                    "schedule": schedule,
                    "next_run": _next_run(schedule),
                    "last_outcome": latest.outcome if latest else None,
                    "last_finished_at": latest.finished_at.isoformat()
                    if latest and latest.finished_at
                    else None,
                    "last_message": latest.message if latest else None,
                }
            )
    return rows


def _next_run(schedule: str) -> str | None:
    try:
        moment = parse_cron(schedule).get_next_fire_time(None, utcnow())
    except InvalidInput:
        return None
    return moment.isoformat() if moment else None
