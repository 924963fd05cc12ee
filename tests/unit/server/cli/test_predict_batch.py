"""`cofre predict-batch`: the same core as HTTP, one audited request per chunk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry.service import PublishRequest
from server.cli import cli
from server.container import Container
from tests.support.models import CARD, iris_classifier


@pytest.fixture
def overrides(overrides: dict[str, object]) -> dict[str, object]:
    return overrides | {"max_rows": 40}  # 150 rows -> four audited requests


@pytest.fixture
def published(cofre: Container) -> Container:
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest(
                name="iris", artifact=iris_classifier(), card=CARD, aliases=["production"]
            ),
        )
    return cofre


def test_batch_scores_every_row_and_audits_each_chunk(
    published: Container, runner: CliRunner, tmp_path: Path
) -> None:
    features, target = load_iris(return_X_y=True, as_frame=True)
    source = tmp_path / "in.csv"
    features.assign(person=[f"p{i}" for i in range(len(features))]).to_csv(source, index=False)
    result = runner.invoke(
        cli,
        [
            "predict-batch",
            "iris",
            str(source),
            str(tmp_path / "out.csv"),
            "--subject-column",
            "person",
            "--purpose",
            "yearly review",
        ],
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "out.csv")
    assert len(scored) == 150 and (scored["prediction"] == target).mean() > 0.9
    assert {"proba_0", "proba_1", "proba_2"} <= set(scored.columns)
    with published.read() as session:
        records = list(session.scalars(select(AuditRecord).where(AuditRecord.endpoint == "batch")))
        assert [r.details["rows"] for r in records] == [40, 40, 40, 30]
        assert {r.purpose for r in records} == {"yearly review"}
        assert records[0].subjects[0] == published.audit.pseudonym("p0")
        assert set(scored["request_id"]) == {r.request_id for r in records}


def _batch_records(cofre: Container) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.endpoint == "batch").order_by(AuditRecord.seq)
        return list(session.scalars(stmt))


def test_a_bad_row_stops_the_run_delivered_rows_are_kept_and_resume_finishes(
    published: Container, runner: CliRunner, tmp_path: Path
) -> None:
    """Item 10 of the hardening issue: before, the first chunks were audited as served
    while no output was written, and the refused chunk had no record."""
    features, _ = load_iris(return_X_y=True, as_frame=True)
    good = features.assign(key=[f"k{i}" for i in range(len(features))])
    bad = good.copy()
    bad.loc[100, "petal width (cm)"] = None  # missing value, not allowed for this model
    work = tmp_path / "work"
    work.mkdir()
    source, target = work / "in.csv", work / "out.csv"
    bad.to_csv(source, index=False)
    args = ["predict-batch", "iris", str(source), str(target), "--id-column", "key"]
    stopped = runner.invoke(cli, args)
    assert stopped.exit_code == 1
    assert "the input does not match the model's features (rows 81-120" in stopped.output
    assert "--resume" in stopped.output and not target.exists()
    records = _batch_records(published)
    assert [(r.outcome, r.status) for r in records] == [("ok", 200)] * 2 + [("rejected", 422)]
    assert records[2].payload is None  # the refused chunk's rows are not kept
    again = runner.invoke(cli, args)  # without --resume: refused, nothing scored twice
    assert again.exit_code == 1 and "--resume" in again.output
    good.to_csv(source, index=False)  # the operator corrects row 101
    resumed = runner.invoke(cli, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    scored = pd.read_csv(target)
    assert scored["key"].tolist() == good["key"].tolist()  # every row once, in order
    served = [r for r in _batch_records(published) if r.outcome == "ok"]
    assert [r.details["rows"] for r in served] == [40, 40, 40, 30]
    assert set(scored["request_id"]) == {r.request_id for r in served}
    assert sorted(p.name for p in work.iterdir()) == ["in.csv", "out.csv"]


def test_resume_refuses_when_the_scored_rows_changed(
    published: Container, runner: CliRunner, tmp_path: Path
) -> None:
    features, _ = load_iris(return_X_y=True, as_frame=True)
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    broken = features.copy()
    broken.loc[100, "sepal width (cm)"] = None
    broken.to_csv(source, index=False)
    assert runner.invoke(cli, ["predict-batch", "iris", str(source), str(target)]).exit_code == 1
    edited = features.copy()
    edited.loc[3, "sepal width (cm)"] = 9.9  # a row that was already scored
    edited.to_csv(source, index=False)
    result = runner.invoke(cli, ["predict-batch", "iris", str(source), str(target), "--resume"])
    assert result.exit_code == 1
    assert "are not the rows scored before" in result.output


def test_parquet_in_and_out_with_an_id_column(
    published: Container, runner: CliRunner, tmp_path: Path
) -> None:
    """Item 17: Parquet input printed a Python traceback."""
    features, target = load_iris(return_X_y=True, as_frame=True)
    source, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    features.assign(case=range(1000, 1150)).to_parquet(source, index=False)
    result = runner.invoke(
        cli, ["predict-batch", "iris", str(source), str(out), "--id-column", "case"]
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    assert scored["case"].tolist() == list(range(1000, 1150))
    assert (scored["prediction"] == target).mean() > 0.9


def test_unreadable_input_is_a_one_line_error(
    published: Container, runner: CliRunner, tmp_path: Path
) -> None:
    source = tmp_path / "in.parquet"
    source.write_bytes(b"not parquet at all")
    result = runner.invoke(cli, ["predict-batch", "iris", str(source), str(tmp_path / "o.csv")])
    assert result.exit_code == 1
    assert "is not a Parquet file" in result.output and "Traceback" not in result.output
    unknown = runner.invoke(cli, ["predict-batch", "iris", str(source), str(tmp_path / "o.txt")])
    assert unknown.exit_code != 0 and "--format" in unknown.output
