"""Where retraining data comes from: a CSV or Parquet file under the data directory,
or a read-only SQL query against the one database URL the operator configured.

File sources are confined to the data directory, so a plan can never read the
key directory or the appliance's own database. The SHA-256 recorded for a run
is of the file's bytes, or of the query result written as CSV.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from governance.errors import FieldError, InvalidInput, NotFound

KINDS = ("file", "sql")
FILE_TYPES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame
    sha256: str
    source: str


class DataSources:
    """Reads retraining data; knows the data directory and the configured SQL database."""

    def __init__(self, data_dir: Path, database_url: str | None, max_rows: int) -> None:
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.max_rows = max_rows

    def check(self, kind: str, source: str) -> None:
        """Refuse a plan whose source could never be read (InvalidInput naming the field)."""
        if kind not in KINDS:
            raise InvalidInput("unknown source kind", [FieldError("source_kind", "file or sql")])
        if kind == "file":
            self._path(source)
            return
        if not self.database_url:
            raise InvalidInput(
                "no database is configured for SQL sources (retraining_database_url)",
                [FieldError("source", "SQL sources need retraining_database_url")],
            )
        if not source.strip().lower().startswith(("select", "with")):
            raise InvalidInput(
                "a SQL source is one SELECT query", [FieldError("source", "must be a SELECT")]
            )

    def read(self, kind: str, source: str) -> Dataset:
        self.check(kind, source)
        dataset = self._read_file(source) if kind == "file" else self._read_sql(source)
        if len(dataset.frame) > self.max_rows:
            raise InvalidInput(
                f"the source has {len(dataset.frame)} rows, over retraining_max_rows "
                f"({self.max_rows})"
            )
        return dataset

    def _path(self, source: str) -> Path:
        root = self.data_dir.resolve()
        path = (root / source).resolve()
        if not path.is_relative_to(root):
            raise InvalidInput(
                "data files must be inside the retraining data directory",
                [FieldError("source", f"a path under {root}")],
            )
        if path.suffix.lower() not in FILE_TYPES:
            raise InvalidInput(
                "unsupported data file", [FieldError("source", "a .csv or .parquet file")]
            )
        return path

    def _read_file(self, source: str) -> Dataset:
        path = self._path(source)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"the data file {source} does not exist") from None
        try:
            frame = (
                pd.read_csv(io.BytesIO(data))
                if path.suffix.lower() == ".csv"
                else pd.read_parquet(io.BytesIO(data))
            )
        except Exception as exc:  # pandas raises many kinds on bad files
            raise InvalidInput(
                f"the data file {source} is unreadable ({type(exc).__name__})"
            ) from None
        return Dataset(frame, hashlib.sha256(data).hexdigest(), f"file:{source}")

    def _read_sql(self, query: str) -> Dataset:
        engine = create_engine(str(self.database_url), poolclass=NullPool)
        try:
            with engine.connect() as conn, conn.begin():
                _read_only(conn)
                frame = pd.read_sql_query(text(query), conn)
        except Exception as exc:  # driver errors carry the query; keep only the kind
            raise InvalidInput(f"the SQL source failed ({type(exc).__name__})") from None
        finally:
            engine.dispose()
        digest = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        return Dataset(frame, digest, "sql")


def _read_only(conn: Connection) -> None:
    """Belt and braces on top of read-only credentials: the query cannot write."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    else:
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
