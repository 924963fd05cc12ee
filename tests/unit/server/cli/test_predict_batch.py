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


def test_a_bad_row_leaves_no_output_file(
    published: Container, runner: CliRunner, tmp_path: Path
) -> None:
    features, _ = load_iris(return_X_y=True, as_frame=True)
    features.loc[100, "petal width (cm)"] = None  # missing value, not allowed for this model
    work = tmp_path / "work"
    work.mkdir()
    source = work / "in.csv"
    features.to_csv(source, index=False)
    result = runner.invoke(cli, ["predict-batch", "iris", str(source), str(work / "out.csv")])
    assert result.exit_code == 1
    assert "Error: the input does not match the model's features" in result.output
    assert sorted(p.name for p in work.iterdir()) == ["in.csv"]
