"""Gated retraining: a better candidate is registered as `candidate`, never `production`;
poisoned data (flipped labels, a shifted feature) is rejected with the reason recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.errors import InvalidInput
from governance.registry.service import PublishRequest
from governance.retraining.service import PlanRequest
from server.container import Container
from tests.support import drift
from tests.support.models import CARD

# The gates and the comparison do not depend on the database; one test runs on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _publish(cofre: Container, artifact: bytes) -> None:
    request = PublishRequest("churn", artifact, CARD, aliases=["production"])
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)


def _data_dir(cofre: Container) -> Path:
    path = cofre.settings.home / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(cofre: Container, name: str, data: pd.DataFrame) -> str:
    path = _data_dir(cofre) / name
    if name.endswith(".csv"):
        data.to_csv(path, index=False)
    else:
        data.to_parquet(path, index=False)
    return name


def _plan(cofre: Container, source: str, profile: str | None = None, margin: float = 0.02) -> int:
    request = PlanRequest(
        model_name="churn",
        source_kind="file",
        source=source,
        target="label",
        schedule="0 3 * * 1",
        metric="roc_auc",
        min_improvement=margin,
        profile_source=profile,
    )
    return cofre.retraining.create_plan(SYSTEM, request).id


def _aliases(cofre: Container) -> dict[str, int]:
    with cofre.read() as session:
        return {a.name: a.version for a in cofre.registry.model(session, "churn").aliases}


def test_a_better_candidate_is_registered_as_candidate_only(cofre: Container) -> None:
    _publish(cofre, drift.champion("old"))
    source = _write(cofre, "fresh.csv", drift.frame(800, seed=1))
    plan_id = _plan(cofre, source)
    run = cofre.retraining.run(plan_id, SYSTEM)
    assert run.decision == "registered", run.reason
    assert run.candidate_metric is not None and run.champion_metric is not None
    assert run.candidate_metric >= run.champion_metric + 0.02
    assert run.rows == 800 and run.champion_version == 1
    digest = hashlib.sha256((_data_dir(cofre) / source).read_bytes()).hexdigest()
    assert run.data_sha256 == digest and run.source == f"file:{source}"
    assert _aliases(cofre) == {"production": 1, "candidate": 2}
    with cofre.read() as session:
        plan = cofre.retraining.plan(session, plan_id, SYSTEM)
        assert plan.profile is not None  # derived from this first data
        event = session.scalars(
            select(AuditRecord).where(AuditRecord.kind == "retraining.run")
        ).one()
        assert event.details is not None and event.details["decision"] == "registered"
        assert event.details["data_sha256"] == digest


@sqlite_only
def test_flipped_labels_are_rejected_with_the_reason(cofre: Container) -> None:
    _publish(cofre, drift.champion("old"))
    profile = _write(cofre, "reference.csv", drift.frame(800, seed=2))
    clean = drift.frame(800, seed=3)
    source = _write(cofre, "poisoned.parquet", drift.flip_labels(clean, 0.06))
    run = cofre.retraining.run(_plan(cofre, source, profile), SYSTEM)
    assert run.decision == "rejected"
    assert "labels:" in run.reason and "contradict" in run.reason
    assert run.candidate_metric is None  # gated before any fit was compared
    assert _aliases(cofre) == {"production": 1}
    # The same data unpoisoned passes the same gate.
    _write(cofre, "poisoned.parquet", clean)
    with cofre.read() as session:
        plan_id = cofre.retraining.plans(session, SYSTEM)[0].id
    assert cofre.retraining.run(plan_id, SYSTEM).decision == "registered"


@sqlite_only
def test_a_shifted_feature_is_rejected(cofre: Container) -> None:
    _publish(cofre, drift.champion("old"))
    profile = _write(cofre, "reference.csv", drift.frame(800, seed=2))
    source = _write(cofre, "shifted.csv", drift.shift_feature(drift.frame(800, seed=3), "x2", 3.0))
    run = cofre.retraining.run(_plan(cofre, source, profile), SYSTEM)
    assert run.decision == "rejected"
    assert "feature 'x2'" in run.reason
    assert _aliases(cofre) == {"production": 1}


@sqlite_only
def test_a_candidate_that_is_not_better_by_the_margin_is_rejected(cofre: Container) -> None:
    _publish(cofre, drift.champion("new", rows=2000))
    source = _write(cofre, "fresh.csv", drift.frame(800, seed=4))
    run = cofre.retraining.run(_plan(cofre, source, margin=0.02), SYSTEM)
    assert run.decision == "rejected" and "does not beat" in run.reason
    assert run.candidate_metric is not None
    assert _aliases(cofre) == {"production": 1}


@sqlite_only
def test_missing_columns_are_a_schema_rejection(cofre: Container) -> None:
    _publish(cofre, drift.champion("old"))
    source = _write(cofre, "broken.csv", drift.frame(100, seed=5).drop(columns=["x3"]))
    run = cofre.retraining.run(_plan(cofre, source), SYSTEM)
    assert run.decision == "rejected" and "column 'x3' is missing" in run.reason


@sqlite_only
def test_a_missing_source_is_a_failed_run(cofre: Container) -> None:
    _publish(cofre, drift.champion("old"))
    _write(cofre, "later.csv", drift.frame(100, seed=5))
    plan_id = _plan(cofre, "later.csv")
    (_data_dir(cofre) / "later.csv").unlink()
    run = cofre.retraining.run(plan_id, SYSTEM)
    assert run.decision == "failed" and "does not exist" in run.reason


@sqlite_only
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": "../cofre.db"}, "source"),
        ({"source": "/etc/passwd.csv"}, "source"),
        ({"metric": "rmse"}, "metric"),
        ({"metric": "nonsense"}, "metric"),
        ({"schedule": "every day"}, "schedule"),
        ({"source_kind": "sql", "source": "SELECT 1"}, "source"),
    ],
)
def test_bad_plans_are_refused(cofre: Container, change: dict[str, str], field: str) -> None:
    _publish(cofre, drift.champion("old"))
    _write(cofre, "fresh.csv", drift.frame(50, seed=1))
    values = {
        "model_name": "churn",
        "source_kind": "file",
        "source": "fresh.csv",
        "target": "label",
        "schedule": "0 3 * * 1",
        "metric": "roc_auc",
        "min_improvement": 0.01,
    } | change
    with pytest.raises(InvalidInput) as caught:
        cofre.retraining.create_plan(SYSTEM, PlanRequest(**values))  # type: ignore[arg-type]
    assert [e.field for e in caught.value.errors] == [field]
