"""Data sources: files only under the data directory, SQL read-only, hashes recorded."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from governance.errors import InvalidInput, NotFound
from governance.retraining.sources import DataSources
from tests.support import drift


@pytest.fixture
def sql_url(tmp_path: Path) -> str:
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as conn:
        drift.frame(50, seed=1).to_sql("customers", conn, index=False)
    return f"sqlite:///{path}"


def test_csv_and_parquet_carry_the_file_hash(tmp_path: Path) -> None:
    data = drift.frame(40, seed=1)
    data.to_csv(tmp_path / "a.csv", index=False)
    data.to_parquet(tmp_path / "a.parquet", index=False)
    sources = DataSources(tmp_path, None, 1000)
    for name in ("a.csv", "a.parquet"):
        read = sources.read("file", name)
        assert len(read.frame) == 40 and list(read.frame.columns) == [*drift.FEATURES, "label"]
        assert read.sha256 == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    with pytest.raises(NotFound):
        sources.read("file", "missing.csv")
    with pytest.raises(InvalidInput, match="retraining_max_rows"):
        DataSources(tmp_path, None, 10).read("file", "a.csv")


def test_sql_reads_and_cannot_write(tmp_path: Path, sql_url: str) -> None:
    sources = DataSources(tmp_path, sql_url, 1000)
    read = sources.read("sql", "SELECT * FROM customers WHERE label = 1")
    assert 0 < len(read.frame) < 50 and read.source == "sql" and len(read.sha256) == 64
    with pytest.raises(InvalidInput, match="one SELECT"):
        sources.read("sql", "DELETE FROM customers")
    with pytest.raises(InvalidInput, match="SQL source failed"):
        sources.read("sql", "WITH x AS (SELECT 1) DELETE FROM customers")
    assert len(sources.read("sql", "SELECT * FROM customers").frame) == 50
