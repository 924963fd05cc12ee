"""`cofre feedback import`: delayed ground truth in bulk, from a CSV file.

Columns `request_id,row,ground_truth` and optionally `group`, with a header line.
The file is recorded all or nothing: one bad line and nothing is, and every bad
line found is named (`line N: ...`) on standard error.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Sequence
from pathlib import Path

import click

from governance.errors import InvalidInput
from governance.monitoring.feedback import GivenLabel, Submission
from governance.subjects.caller import Caller
from server.cli import CliState, emit_json, pass_state

REQUIRED = ("request_id", "row", "ground_truth")
COLUMNS = (*REQUIRED, "group")


@click.group("feedback")
def feedback() -> None:
    """Ground truth for earlier predictions (monitoring's performance figures)."""


@feedback.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print what was recorded as JSON.")
@pass_state
def import_feedback(state: CliState, name: str, file: Path, as_json: bool) -> None:
    """Record the labels in FILE (CSV: request_id,row,ground_truth[,group]) for model NAME."""
    submissions = read_labels(file)
    caller = Caller(state.actor, "cli", uuid.uuid4().hex)
    try:
        recorded = state.services.feedback.import_labels(caller, name, submissions)
    except InvalidInput as exc:
        for error in exc.errors:
            click.echo(f"{error.field}: {error.message}", err=True)
        raise click.ClickException(exc.detail) from None
    if as_json:
        emit_json([r.as_dict() for r in recorded])
        return
    labels = sum(len(r.rows) for r in recorded)
    corrections = sum(len(r.corrections) for r in recorded)
    click.echo(
        f"recorded {labels} labels of {len(recorded)} predictions of {name} "
        f"({corrections} corrections)"
    )


def read_labels(file: Path) -> list[Submission]:
    """The file's labels in its order, each naming its line (the service groups them
    by request id)."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            return _submissions(csv.DictReader(handle))
    except UnicodeDecodeError:
        raise click.ClickException(f"{file.name} is not UTF-8 text") from None
    except csv.Error as exc:
        raise click.ClickException(f"{file.name} is not a readable CSV file: {exc}") from None


def _submissions(reader: csv.DictReader[str]) -> list[Submission]:
    _check_header(reader.fieldnames)
    submissions = []
    for line in reader:
        source = f"line {reader.line_num}"
        if None in line:
            raise click.ClickException(f"{source}: more cells than the header has columns")
        label = GivenLabel(
            _row(line["row"] or ""), line["ground_truth"], line.get("group") or None, source
        )
        submissions.append(Submission((line["request_id"] or "").strip(), (label,)))
    return submissions


def _check_header(names: Sequence[str] | None) -> None:
    found = list(names or [])
    missing = [c for c in REQUIRED if c not in found]
    unknown = [c for c in found if c not in COLUMNS]
    if missing or unknown:
        problem = f"missing column {missing[0]}" if missing else f"unknown column {unknown[0]!r}"
        raise click.ClickException(f"line 1: {problem}; the header must be {','.join(COLUMNS)}")


def _row(text: str) -> int | str:
    """The row index, or the text as it was (the service refuses it, naming the line)."""
    try:
        return int(text.strip())
    except ValueError:
        return text


commands = [feedback]
