"""`cofre subjects`: a data subject's export, erasure and legal hold; retention."""

from __future__ import annotations

from pathlib import Path

import click

from governance.subjects.caller import Caller
from server import representations as rep
from server.cli import CliState, emit_json, pass_state
from server.exports import FORMATS, subject_file


@click.group("subjects")
def subjects() -> None:
    """Data-subject rights: access (export), erasure, legal holds, retention."""


def _caller(state: CliState) -> Caller:
    return Caller(state.actor, "cli")


@subjects.command("export")
@click.argument("subject_id")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@pass_state
def export(state: CliState, subject_id: str, fmt: str, out: Path | None) -> None:
    """Everything the appliance holds about SUBJECT_ID (decrypted; the export is audited)."""
    cofre = state.services
    with cofre.write() as session:
        gathered = cofre.subject_exports.export(session, _caller(state), subject_id, fmt)
    exported = subject_file(gathered, fmt)
    if out is None:
        click.echo(exported.body, nl=False)
        return
    fd = out.open("x") if not out.exists() else None
    if fd is None:
        raise click.ClickException(f"{out} exists; choose a new file")
    with fd:
        out.chmod(0o600)  # personal data
        fd.write(exported.body)
    click.echo(f"{exported.count} decision rows written to {out}", err=True)


@subjects.command("erase")
@click.argument("subject_id")
@click.option("--reason", required=True, help="A reference for the request (kept in clear).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def erase(state: CliState, subject_id: str, reason: str, as_json: bool) -> None:
    """Erase SUBJECT_ID: destroy every data key of theirs (refused under legal hold)."""
    result = state.services.subjects.erase(_caller(state), subject_id, reason)
    if as_json:
        emit_json(rep.erasure(result))
    elif result.already_erased:
        click.echo(f"already erased: no live data key left (recorded at record {result.seq})")
    else:
        click.echo(f"erased: {result.keys_destroyed} data keys destroyed (record {result.seq})")


@subjects.command("hold")
@click.argument("subject_id")
@click.option("--reason", required=True, help="The legal matter (kept in clear).")
@pass_state
def hold(state: CliState, subject_id: str, reason: str) -> None:
    """Place a legal hold on SUBJECT_ID: no erasure and no retention until released."""
    placed = state.services.subjects.hold(_caller(state), subject_id, reason)
    click.echo(f"legal hold {placed.id} placed")


@subjects.command("release")
@click.argument("subject_id")
@pass_state
def release(state: CliState, subject_id: str) -> None:
    """Release the legal hold on SUBJECT_ID."""
    released = state.services.subjects.release(_caller(state), subject_id)
    click.echo(f"legal hold {released.id} released")


@subjects.command("status")
@click.argument("subject_id")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def status(state: CliState, subject_id: str, as_json: bool) -> None:
    """What is held about SUBJECT_ID (keys, holds, requests), without decrypting."""
    cofre = state.services
    with cofre.read() as session:
        data = rep.subject_status(cofre.subjects.status(session, cofre.audit.pseudonym(subject_id)))
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"subject {data['subject'][:16]}…: {data['live_keys']} live and "
        f"{data['destroyed_keys']} destroyed data keys; held={'yes' if data['held'] else 'no'}"
    )
    for event in data["events"]:
        click.echo(f"  {event['at']} {event['kind']} {event['outcome']}")


@subjects.command("retention")
@click.option("--dry-run", is_flag=True, help="Only say what would be shredded.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def retention(state: CliState, dry_run: bool, as_json: bool) -> None:
    """Shred the data keys of rows past their version's retention period (holds spared)."""
    cofre = state.services
    with cofre.read() if dry_run else cofre.write() as session:
        if dry_run:
            report = cofre.retention.plan(session)
        else:
            report = cofre.retention.run(session, state.actor)
    data = rep.retention_report(report, dry_run)
    if as_json:
        emit_json(data)
        return
    verb = "would shred" if dry_run else "shredded"
    count = data["due"] if dry_run else data["shredded"]
    click.echo(f"{verb} {count} data keys")
    for line in data["versions"]:
        name = f"{line['model']}:{line['version']}" if line["model"] else "(no model)"
        click.echo(f"  {name}: {line['keys']} keys older than {line['retention_days']} days")
    for ref in data["artifacts"]:
        click.echo(f"  {ref}: retired, its artifact key {verb.split()[-1]} (retention passed)")


commands = [subjects]
