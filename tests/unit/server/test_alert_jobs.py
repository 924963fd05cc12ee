"""The alert jobs of the catalogue: a plan waiting on drift alerts runs once per pass
however many fired, with its gates, recording the alerts that triggered it, and never
moves `production`; the webhook job exists only with a webhook configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.monitoring.records import AlertDelivery
from governance.monitoring.rules import make_rule
from governance.registry.service import PublishRequest
from governance.retraining.service import PlanRequest
from server.config import load_settings
from server.container import Container
from server.jobs import alert_retraining_work, standard_jobs
from tests.support import alert_rollups as rollups
from tests.support import drift
from tests.support.models import CARD

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _plan(cofre: Container, on_alert: str | None) -> int:
    (cofre.settings.home / "datasets").mkdir(parents=True, exist_ok=True)
    drift.frame(400, seed=1).to_csv(cofre.settings.home / "datasets" / "fresh.csv", index=False)
    request = PlanRequest(
        "churn", "file", "fresh.csv", "label", "0 3 1 1 *", "roc_auc", 0.01, on_alert=on_alert
    )
    return cofre.retraining.create_plan(SYSTEM, request).id


@sqlite_only
def test_a_drift_alert_runs_the_waiting_plan_once_and_never_promotes(cofre: Container) -> None:
    with cofre.write() as session:
        request = PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"])
        cofre.registry.publish(session, SYSTEM, request)
        cofre.alerts.add_rule(session, SYSTEM, "churn", make_rule("drift", "ks", 0.3))
    waiting, other = _plan(cofre, "drift"), _plan(cofre, "performance")
    _plan(cofre, None)
    with cofre.write() as session:
        rollups.write(session, "churn", 1, 0, {"x0": 0.9})
        rollups.write(session, "churn", 1, 0, {"x0": 0.9}, method="ks")
    with cofre.write() as session:
        assert len(cofre.alerts.evaluate(session, "churn", 1)) == 2  # two drift rules fire

    message = alert_retraining_work(cofre)
    assert message.startswith(f"plan {waiting} run ") and str(other) not in message
    with cofre.read() as session:
        [run] = cofre.retraining.runs(session, SYSTEM)
        rows = session.scalars(select(AlertDelivery).where(AlertDelivery.channel == "retrain"))
        settled = [(r.plan_id, r.status, r.attempts) for r in rows]
        production = cofre.registry.resolve(session, "churn", alias="production").version
        records = session.scalars(select(AuditRecord).where(AuditRecord.kind == "retraining.run"))
        [audited] = list(records)
    assert run.plan_id == waiting and run.details and run.details["trigger"] == "alert 1, 2"
    assert run.decision == "registered"  # the fresh data follows a new concept: it wins...
    assert production == 1  # ...and is published as `candidate`, never promoted
    assert settled == [(waiting, "delivered", 1), (waiting, "delivered", 1)]
    assert audited.details["trigger"] == "alert 1, 2"
    assert alert_retraining_work(cofre) == "no alert waiting for a retraining"


@sqlite_only
def test_a_plan_that_cannot_run_settles_its_rows_as_failed(cofre: Container) -> None:
    with cofre.write() as session:
        request = PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"])
        cofre.registry.publish(session, SYSTEM, request)
    plan = _plan(cofre, "drift")
    with cofre.write() as session:
        rollups.write(session, "churn", 1, 0, {"x0": 0.9})
    with cofre.write() as session:
        cofre.alerts.evaluate(session, "churn", 1)
        session.delete(cofre.retraining.plan(session, plan, SYSTEM))  # gone before the job ran
    message = alert_retraining_work(cofre)
    assert message == f"plan {plan}: no retraining plan {plan}"
    with cofre.read() as session:
        [row] = session.scalars(select(AlertDelivery).where(AlertDelivery.channel == "retrain"))
        assert (row.status, row.attempts) == ("failed", 1) and row.last_error


def test_the_webhook_job_exists_only_with_a_webhook(tmp_path: Path) -> None:
    base = {"home": str(tmp_path), "testing": True}
    names = {s.name for s in standard_jobs(load_settings(base, environ={}))}
    assert "alert-retraining" in names and "alert-delivery" not in names
    hooked = load_settings(base | {"alert_webhook_url": "http://127.0.0.1:9/h"}, environ={})
    assert "alert-delivery" in {s.name for s in standard_jobs(hooked)}


@sqlite_only
def test_evaluate_alerts_judges_each_reported_version_once(cofre: Container) -> None:
    from server.jobs import evaluate_alerts

    with cofre.write() as session:
        request = PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"])
        cofre.registry.publish(session, SYSTEM, request)
        cofre.registry.publish(session, SYSTEM, PublishRequest("churn", drift.champion(), CARD))
        rollups.write(session, "churn", 1, 0, {"x0": 0.9})
        rollups.write(session, "churn", 2, 0, {"x0": 0.1})
    fired = evaluate_alerts(cofre, [("churn", 1), ("churn", 2), ("churn", 1)])
    assert [(t.model_name, t.model_version, t.state) for t in fired] == [("churn", 1, "firing")]
    assert evaluate_alerts(cofre, [("churn", 1)]) == []
