"""`cofre predict-batch`: score a CSV file through the same core, every row audited."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import pandas as pd

from server.cli import CliState, pass_state
from server.inference.predictor import PredictionRequest, PredictionResult
from server.inference.table import Table


@click.command("predict-batch")
@click.argument("name")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--alias", help="Alias to use (default: production).")
@click.option("--version", "version", type=int, help="Exact version to use.")
@click.option("--subject-column", help="Column holding the subject id of each row.")
@click.option("--purpose", help="Purpose recorded with every audited request.")
@pass_state
def predict_batch(
    state: CliState,
    name: str,
    source: Path,
    target: Path,
    alias: str | None,
    version: int | None,
    subject_column: str | None,
    purpose: str | None,
) -> None:
    """Score SOURCE.csv with model NAME into TARGET.csv (written atomically)."""
    predictor = state.services.predictor
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    with source.open("rb") as lines:
        total = max(sum(1 for _ in lines) - 1, 0)
    written = 0
    try:
        chunks = pd.read_csv(source, chunksize=state.services.settings.max_rows)
        with chunks, click.progressbar(length=total, label="scoring", file=sys.stderr) as bar:
            for chunk in chunks:
                subjects = _subjects(chunk, subject_column)
                features = chunk.drop(columns=[subject_column]) if subject_column else chunk
                result = predictor.predict(
                    state.actor,
                    PredictionRequest(
                        model=name,
                        table=_table(features),
                        endpoint="batch",
                        request_id=uuid.uuid4().hex,
                        alias=alias,
                        version=version,
                        subject_ids=subjects,
                        purpose=purpose,
                        path=source.name,
                    ),
                )
                _output(chunk, result).to_csv(partial, mode="a", header=written == 0, index=False)
                written += len(chunk)
                bar.update(len(chunk))
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-written output under any name
        raise
    os.replace(partial, target)
    click.echo(f"scored {written} rows with {name}; every request is in the audit log")


def _table(frame: pd.DataFrame) -> Table:
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    return Table(rows, [str(c) for c in frame.columns])


def _subjects(chunk: pd.DataFrame, column: str | None) -> list[str | None] | None:
    if column is None:
        return None
    if column not in chunk.columns:
        raise click.ClickException(f"no column {column!r} in the input")
    return [None if pd.isna(v) else str(v) for v in chunk[column]]


def _output(chunk: pd.DataFrame, result: PredictionResult) -> pd.DataFrame:
    out: dict[str, Any] = {"prediction": result.predictions}
    if result.probabilities is not None and result.classes is not None:
        for index, label in enumerate(result.classes):
            out[f"proba_{label}"] = [row[index] for row in result.probabilities]
    frame = pd.DataFrame(out, index=chunk.index)
    frame.insert(0, "request_id", result.request_id)
    return frame


commands = [predict_batch]
