"""`cofre predict-batch`: score a CSV or Parquet file through the same core as HTTP.

Each chunk of at most `max_rows` rows is one prediction call, audited by the
core like any other (its record committed before its rows are written). The
scored rows go to a work directory beside the target, one part file per
chunk, fsynced: a part exists exactly when its decisions were delivered. The
target appears, atomically, only when every row is scored. A run that stops
(a bad row, a crash) keeps its parts and its plan (`run.json`: source hash,
model version, rows done), and `--resume` continues it with the same version,
so no decision is made twice and none is left without its output.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import pandas as pd

from governance.accounts.actor import Actor
from governance.errors import CofreError
from governance.files import fsync_directory, write_atomically
from server.cli import CliState, pass_state
from server.cli.params import ID
from server.inference.codecs import frames
from server.inference.predictor import Call, Decoded, PredictionResult, Predictor


@dataclass
class Plan:
    """What a run promised to do, kept beside its parts so a resume keeps it."""

    model: str
    version: int
    done: int = 0
    parts: int = 0
    # SHA-256 over the rows scored so far (pandas' row hashes, chained): a resumed
    # run may follow a corrected file, but only if the rows already scored are the
    # same rows.
    scored_sha256: str = ""


@dataclass(frozen=True)
class Carried:
    """Input columns that are not features: a join key and the subject of each row."""

    id: str | None
    subject: str | None

    @property
    def names(self) -> list[str]:
        return [c for c in (self.id, self.subject) if c]

    def check(self, chunk: pd.DataFrame) -> None:
        for column in self.names:
            if column not in chunk.columns:
                raise click.ClickException(f"no column {column!r} in the input")


@click.command("predict-batch")
@click.argument("name")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--alias", help="Alias to use (default: production).")
@click.option("--version", "version", type=ID, help="Exact version to use.")
@click.option("--format", "fmt", type=click.Choice(frames.FORMATS), help="Input format.")
@click.option("--id-column", help="Column carried through to the output to join on.")
@click.option("--subject-column", help="Column holding the subject id of each row.")
@click.option("--purpose", help="Purpose recorded with every audited request.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into TARGET.")
@pass_state
def predict_batch(
    state: CliState,
    name: str,
    source: Path,
    target: Path,
    alias: str | None,
    version: int | None,
    fmt: str | None,
    id_column: str | None,
    subject_column: str | None,
    purpose: str | None,
    resume: bool,
) -> None:
    """Score SOURCE (.csv or .parquet) with model NAME into TARGET (.csv or .parquet)."""
    in_format, out_format = frames.file_format(source, fmt), frames.file_format(target)
    predictor, actor = state.services.predictor, state.actor
    rows = state.services.settings.max_rows
    work = target.with_name(f".{target.name}.partial")
    plan = _plan(predictor, actor, work, name, alias, version, resume)
    _check_scored_rows(plan, source, in_format, rows)
    columns = Carried(id_column, subject_column)
    total = frames.count_rows(source, in_format)
    with click.progressbar(length=total, label="scoring", file=sys.stderr) as bar:
        bar.update(plan.done)
        for chunk in frames.read_chunks(source, in_format, rows, plan.done):
            columns.check(chunk)
            try:
                result = _score(predictor, actor, plan, chunk, source.name, columns, purpose)
            except CofreError as exc:
                raise click.ClickException(_stopped(exc, plan, work, len(chunk))) from None
            plan.scored_sha256 = _chained(plan.scored_sha256, chunk)
            _deliver(work, plan, _output(chunk, result, id_column), out_format)
            bar.update(len(chunk))
    _finish(work, plan, target, out_format)
    click.echo(f"scored {plan.done} rows with {name} version {plan.version}; all audited")


def _stopped(exc: CofreError, plan: Plan, work: Path, size: int) -> str:
    first = plan.done + 1
    return (
        f"{exc.detail} (rows {first}-{first + size - 1}, refused and audited as refused); "
        f"the {plan.done} rows scored before are kept in {work}: "
        "correct the input and run again with --resume"
    )


def _plan(
    predictor: Predictor,
    actor: Actor,
    work: Path,
    name: str,
    alias: str | None,
    version: int | None,
    resume: bool,
) -> Plan:
    if resume:
        plan = _read_plan(work)
        if plan.model != name:
            raise click.ClickException(f"--resume: the interrupted run scored {plan.model}")
        return plan
    if work.exists():
        raise click.ClickException(
            f"an interrupted run is kept in {work.name}: add --resume, or remove it to start over"
        )
    served = predictor.served_version(actor, name, alias=alias, version=version)
    work.mkdir(mode=0o700)
    plan = Plan(model=name, version=served.version)
    _write_plan(work, plan)
    return plan


def _check_scored_rows(plan: Plan, source: Path, fmt: str, rows: int) -> None:
    """On resume, the rows already scored must still be the source's first rows."""
    if not plan.done:
        return
    digest, seen = "", 0
    for chunk in frames.read_chunks(source, fmt, rows):
        chunk = chunk.iloc[: plan.done - seen]
        digest, seen = _chained(digest, chunk), seen + len(chunk)
        if seen >= plan.done:
            break
    if (seen, digest) != (plan.done, plan.scored_sha256):
        raise click.ClickException(
            f"--resume: the first {plan.done} rows of {source.name} are not the rows scored before"
        )


def _chained(digest: str, chunk: pd.DataFrame) -> str:
    rows = pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes()
    return hashlib.sha256(digest.encode("ascii") + rows).hexdigest()


def _score(
    predictor: Predictor,
    actor: Actor,
    plan: Plan,
    chunk: pd.DataFrame,
    source_name: str,
    columns: Carried,
    purpose: str | None,
) -> PredictionResult:
    # The version is pinned at the start of the run: an alias moved meanwhile does
    # not change the model half-way through a file.
    call = Call("batch", plan.model, uuid.uuid4().hex, path=source_name, version=str(plan.version))
    decoded = Decoded(
        table=frames.frame_table(chunk.drop(columns=columns.names)),
        subject_ids=_subjects(chunk, columns.subject),
        purpose=purpose,
    )
    return predictor.predict(lambda: actor, call, lambda served: decoded)


def _subjects(chunk: pd.DataFrame, column: str | None) -> list[str | None] | None:
    if column is None:
        return None
    return [None if pd.isna(v) else str(v) for v in chunk[column]]


def _output(chunk: pd.DataFrame, result: PredictionResult, id_column: str | None) -> pd.DataFrame:
    out: dict[str, Any] = {}
    if id_column:
        out[id_column] = chunk[id_column].to_numpy()
    out["request_id"] = result.request_id
    out["prediction"] = result.predictions
    if result.probabilities is not None and result.classes is not None:
        for index, label in enumerate(result.classes):
            out[f"proba_{label}"] = [row[index] for row in result.probabilities]
    return pd.DataFrame(out)


def _deliver(work: Path, plan: Plan, frame: pd.DataFrame, fmt: str) -> None:
    """One part file per audited chunk, durable before the plan counts it."""
    write_atomically(work / f"part-{plan.parts:06d}.{fmt}", _encoded(frame, fmt))
    plan.done += len(frame)
    plan.parts += 1
    _write_plan(work, plan)


def _finish(work: Path, plan: Plan, target: Path, fmt: str) -> None:
    parts = [_decoded(work / f"part-{i:06d}.{fmt}", fmt) for i in range(plan.parts)]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    write_atomically(target, _encoded(frame, fmt), mode=0o644)
    shutil.rmtree(work)
    fsync_directory(target.parent)


def _encoded(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    return frame.to_csv(index=False).encode("utf-8")


def _decoded(path: Path, fmt: str) -> pd.DataFrame:
    return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)


def _read_plan(work: Path) -> Plan:
    try:
        return Plan(**json.loads((work / "run.json").read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        raise click.ClickException(f"--resume: no interrupted run in {work.name}") from None


def _write_plan(work: Path, plan: Plan) -> None:
    write_atomically(work / "run.json", json.dumps(asdict(plan)).encode("utf-8"))


commands = [predict_batch]
