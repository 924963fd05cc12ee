"""`cofre jobs` (history, schedule, run one now) and `cofre scheduler` (the process)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from server import representations as rep
from server.cli import CliState, emit_json, pass_state
from server.jobs import job_table, job_work, run_recorded
from server.scheduler import Scheduler


@click.group("jobs")
def jobs() -> None:
    """Scheduled jobs: history and schedule."""


@jobs.command("list")
@click.option("--job", "job", help="Only this job (a trailing * matches a prefix: retrain:*).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_runs(state: CliState, job: str | None, limit: int, as_json: bool) -> None:
    """Recent job runs, newest first."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.job_run(r) for r in cofre.jobs.recent(session, job, limit)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['started_at']}  {row['job']:<16} {row['outcome']:<8} "
            f"attempts={row['attempts']}  {row['message']}"
        )


@jobs.command("schedule")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def schedule(state: CliState, as_json: bool) -> None:
    """Every scheduled job with its cron, next firing and latest outcome."""
    rows: list[dict[str, Any]] = job_table(state.services)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['job']:<16} {row['schedule']:<16} next={row['next_run']}  "
            f"last={row['last_outcome'] or '-'}"
        )


@jobs.command("run")
@click.argument("name")
@pass_state
def run_now(state: CliState, name: str) -> None:
    """Run job NAME now (backup, restore-drill, retrain:<id>), recorded like a scheduled run."""
    work = job_work(state.services, name)
    end = run_recorded(state.app, name, work)
    if end.outcome != "ok":
        raise click.ClickException(f"job {name} failed: {end.message}")
    click.echo(f"job {name} ok: {end.message}")


@click.command("scheduler")
@pass_state
def scheduler(state: CliState) -> None:
    """Run the scheduler process (one acts at a time; others stand by)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Scheduler(state.app, stop).serve()


commands = [jobs, scheduler]
