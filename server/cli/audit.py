"""`cofre audit`: verify the chain, sign and export checkpoints, export records."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from governance.audit.service import VerifyReport
from server.cli import CliState, emit_json, pass_state
from server.exports import audit_file


@click.group("audit")
def audit() -> None:
    """Verify and export the audit log."""


@audit.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, path_type=Path),
    help="An exported signed checkpoint; also detects truncation and rewrites.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def verify(state: CliState, checkpoint_file: Path | None, as_json: bool) -> None:
    """Recompute the whole chain; exit 0 if intact, 1 naming the first bad record."""
    checkpoint = _read_checkpoint(checkpoint_file) if checkpoint_file else None
    cofre = state.services
    with cofre.read() as session:
        total = cofre.audit.count(session)
        with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
            report = cofre.audit.verify(session, checkpoint, progress=bar.update)
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(_describe(report))
    if not report.ok:
        raise SystemExit(1)


def _describe(report: VerifyReport) -> str:
    if report.ok:
        span = f"records {report.first_seq}..{report.last_seq}" if report.last_seq else "empty log"
        extra = f", matches checkpoint at {report.checkpoint_seq}" if report.checkpoint_seq else ""
        return f"OK: {span} verified{extra}"
    return f"FAILED at record {report.bad_seq}: {report.reason}"


def _read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise click.ClickException(f"{path} is not a checkpoint file (not JSON)") from None
    if not isinstance(data, dict) or "seq" not in data:
        raise click.ClickException(f"{path} is not a checkpoint file")
    return data


@audit.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the signed checkpoint here (else print it).",
)
@pass_state
def checkpoint(state: CliState, out: Path | None) -> None:
    """Verify the chain since the last checkpoint, then sign its head and export it."""
    checkpoint, _ = state.services.checkpoints.sign_verified()
    exported = state.services.audit.export_checkpoint(checkpoint)
    text = json.dumps(exported, indent=2)
    if out:
        out.write_text(text + "\n")
        click.echo(f"checkpoint at record {exported['seq']} written to {out}")
    else:
        click.echo(text)


@audit.command("export")
@click.option("--request", "request_id", help="Export the records of this request id.")
@click.option("--subject", "subject_id", help="Export every record about this subject.")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@pass_state
def export(state: CliState, request_id: str | None, subject_id: str | None, fmt: str) -> None:
    """Print records with their personal data decrypted (the export is audited)."""
    if (request_id is None) == (subject_id is None):
        raise click.UsageError("give exactly one of --request or --subject")
    cofre = state.services
    with cofre.write() as session:
        if request_id:
            records, subject = cofre.audit.by_request(session, state.actor, request_id), ""
        else:
            records = cofre.audit.by_subject(session, state.actor, subject_id or "")
            subject = cofre.audit.pseudonym(subject_id or "")
        disclosed = cofre.disclosures.export(
            session, state.actor, records, fmt, subject, endpoint="cli"
        )
    click.echo(audit_file(disclosed, fmt).body)


commands = [audit]
