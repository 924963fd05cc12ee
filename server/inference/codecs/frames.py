"""Tabular data to rows: CSV bodies (MLflow's `text/csv`) and batch-scoring files
(CSV or Parquet, read in chunks), read with pandas and pyarrow. Empty cells
become None, so the schema check treats them as missing values."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from governance.errors import MalformedInput
from server.inference.table import Table


def csv_table(data: bytes) -> Table:
    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        raise MalformedInput("the body is not readable CSV with a header row") from None
    return frame_table(frame)


def frame_table(frame: pd.DataFrame) -> Table:
    """A DataFrame's rows and column names, values as plain Python objects."""
    return Table(plain_rows(frame), [str(c) for c in frame.columns])


def plain_rows(frame: pd.DataFrame) -> list[list[Any]]:
    return frame.astype(object).where(frame.notna(), None).values.tolist()


# -- files for batch scoring --------------------------------------------------------------
FORMATS = ("csv", "parquet")


def file_format(path: Path, given: str | None = None) -> str:
    """`given`, else the file's extension (.csv, .parquet or .pq)."""
    if given:
        return given
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise MalformedInput(f"{path.name}: say --format csv or parquet (unknown extension)")


def count_rows(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return int(_parquet(path).metadata.num_rows)
    with path.open("rb") as lines:
        return max(sum(1 for _ in lines) - 1, 0)


def read_chunks(path: Path, fmt: str, rows: int, skip: int = 0) -> Iterator[pd.DataFrame]:
    """The file's rows as DataFrames of at most `rows` rows, after the first `skip`."""
    try:
        if fmt == "parquet":
            yield from _parquet_chunks(path, rows, skip)
        else:
            reader = pd.read_csv(path, chunksize=rows, skiprows=range(1, skip + 1))
            with reader:
                yield from reader
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as exc:
        problem = type(exc).__name__
        raise MalformedInput(f"{path.name} is not readable as {fmt} ({problem})") from None


def _parquet_chunks(path: Path, rows: int, skip: int) -> Iterator[pd.DataFrame]:
    seen = 0
    for batch in _parquet(path).iter_batches(batch_size=rows):
        frame = batch.to_pandas()
        if seen + len(frame) <= skip:
            seen += len(frame)
            continue
        start, seen = max(0, skip - seen), seen + len(frame)
        yield frame.iloc[start:].reset_index(drop=True)


def _parquet(path: Path) -> Any:
    import pyarrow.parquet as pq  # only batch scoring of Parquet needs it

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error types for bad files
        raise MalformedInput(f"{path.name} is not a Parquet file ({type(exc).__name__})") from None
