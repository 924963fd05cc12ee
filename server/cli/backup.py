"""`cofre backup`: run, list, verify, restore, drill and prune backups."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from backups.catalog import BackupEntry
from backups.service import RestoreReport
from governance.operations.jobs import BACKUP_JOB, DRILL_JOB
from server.cli import CliState, emit_json, pass_state
from server.container import Container
from server.jobs import run_recorded


@click.group("backup")
def backup() -> None:
    """Back up, verify and restore the appliance's state."""


@backup.command("run")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def run(state: CliState, as_json: bool) -> None:
    """Write a new encrypted backup, verify it, copy it to the mirror (if configured).

    Recorded as a run of the `backup` job, as the scheduler's are, so /readyz and
    `cofre jobs schedule` count it."""
    made: list[BackupEntry] = []

    def work(container: Container) -> str:
        made.append(_backup(container, state))
        return f"backup {made[0].id} ({made[0].size} bytes) verified (cofre backup run)"

    _recorded(state, BACKUP_JOB, work)
    entry = made[0]
    if as_json:
        emit_json(entry.as_dict())
        return
    click.echo(f"backup {entry.id} written ({entry.size} bytes) and verified: {entry.path}")


@backup.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_backups(state: CliState, as_json: bool) -> None:
    """List complete backups, newest first."""
    rows = [e.as_dict() for e in state.services.backups.entries()]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        manifest = row.get("manifest", {})
        drill = row.get("drill", {})
        chain = "ok" if manifest.get("audit_chain_ok", True) else "BROKEN"
        click.echo(
            f"{row['id']}  {row['size']:>12} bytes  audit@{manifest.get('audit_seq', '?')}  "
            f"chain={chain}  verified={'yes' if row['verified'] else 'no'}  "
            f"drill={'-' if not drill else ('ok' if drill.get('ok') else 'FAILED')}"
        )


@backup.command("verify")
@click.argument("backup_id")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def verify(state: CliState, backup_id: str, as_json: bool) -> None:
    """Decrypt BACKUP_ID and check every member against its manifest."""
    with _working("verifying"):
        manifest = state.services.backups.verify(backup_id, state.actor)
    if as_json:
        emit_json(manifest.summary() | {"ok": True})
        return
    click.echo(
        f"OK: backup {backup_id}: {len(manifest.members)} members intact, "
        f"audit log to record {manifest.audit_seq}"
    )


@backup.command("restore")
@click.argument("backup_id")
@click.option(
    "--into",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new or empty directory: the restored appliance's home.",
)
@click.option(
    "--database-url",
    help="An empty database to restore onto (required for PostgreSQL backups).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def restore(
    state: CliState, backup_id: str, into: Path, database_url: str | None, as_json: bool
) -> None:
    """Restore BACKUP_ID into a new home, then prove it: models load, audit chain verifies."""
    with _working("restoring"):
        report = state.services.backups.restore(backup_id, into, state.actor, database_url)
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(
        f"restored {backup_id} into {report.home} in {report.seconds:.1f} s: "
        f"{report.models_loaded} model versions load, audit chain verified to "
        f"record {report.audit_seq}"
    )
    click.echo(f"start it with COFRE_CONFIG={report.home / 'cofre.toml'}")


@backup.command("drill")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def drill(state: CliState, as_json: bool) -> None:
    """Restore the newest backup into a scratch place, prove it, and throw it away
    (recorded as a run of the `restore-drill` job)."""
    drilled: list[RestoreReport] = []

    def work(container: Container) -> str:
        drilled.append(container.backups.drill(state.actor))
        report = drilled[0]
        return (
            f"restored {report.backup_id} in {report.seconds:.2f} s: {report.models_loaded} "
            f"model versions loaded, audit verified to {report.audit_seq} (cofre backup drill)"
        )

    _recorded(state, DRILL_JOB, work)
    report = drilled[0]
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(f"drill OK: {report.backup_id} restored and proven in {report.seconds:.2f} s")


@backup.command("prune")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@pass_state
def prune(state: CliState, dry_run: bool) -> None:
    """Delete backups that retention does not keep (never the newest verified one, nor
    the newest that passed a restore drill)."""
    removed = state.services.backups.prune(state.actor, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(removed)} backup(s)" + "".join(f"\n  {i}" for i in removed))


def _backup(container: Container, state: CliState) -> BackupEntry:
    backups = container.backups
    if not sys.stderr.isatty():
        return backups.run(state.actor)
    length = max(1, backups.estimate_bytes())
    with click.progressbar(length=length, label="backing up", file=sys.stderr) as bar:
        return backups.run(state.actor, progress=bar.update)


def _recorded(state: CliState, job: str, work: Callable[[Container], str]) -> None:
    """Run `work` once as a recorded run of `job`; its failure is the command's."""
    end = run_recorded(state.app, job, work, retries=0)  # the operator decides to retry
    if end.outcome != "ok":
        raise click.ClickException(end.message)


@contextmanager
def _working(label: str) -> Iterator[None]:
    """A line on a terminal while long work runs (quiet in scripts and pipes)."""
    tty = sys.stderr.isatty()
    if tty:
        click.echo(f"{label}...", err=True, nl=False)
    try:
        yield
    except BaseException:
        if tty:
            click.echo(" failed", err=True)
        raise
    if tty:
        click.echo(" done", err=True)


commands = [backup]
