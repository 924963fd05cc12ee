"""`cofre alerts list|rules` and `cofre retrain create|update --on-alert`."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry.service import PublishRequest
from governance.retraining.service import PlanRequest
from server.cli import cli
from server.container import Container
from tests.support import alert_rollups as rollups
from tests.support import drift
from tests.support.models import CARD

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def churn(cofre: Container) -> Container:
    with cofre.write() as session:
        request = PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"])
        cofre.registry.publish(session, SYSTEM, request)
    return cofre


def test_rules_listed_added_removed(runner: CliRunner, churn: Container) -> None:
    listed = json.loads(_ok(runner, "alerts", "rules", "list", "churn", "--json"))
    assert [(r["ref"], r["description"]) for r in listed] == [
        ("default-1", "drift: psi > 0.25 on any feature in the latest window")
    ]
    out = _ok(
        runner,
        "alerts",
        "rules",
        "add",
        "churn",
        "--kind",
        "drift",
        "--method",
        "ks",
        "--threshold",
        "0.3",
        "--windows",
        "3",
        "--feature",
        "x1",
    )
    assert "drift: ks > 0.3 on x1 in 3 consecutive windows" in out
    rules = json.loads(_ok(runner, "alerts", "rules", "list", "churn", "--json"))
    assert [r["source"] for r in rules] == ["model", "model"]
    _ok(runner, "alerts", "rules", "remove", "churn", rules[1]["ref"])
    assert len(json.loads(_ok(runner, "alerts", "rules", "list", "churn", "--json"))) == 1
    wrong = runner.invoke(
        cli,
        [
            "alerts",
            "rules",
            "add",
            "churn",
            "--kind",
            "drift",
            "--method",
            "psx",
            "--threshold",
            "1",
        ],
    )
    assert wrong.exit_code != 0 and "invalid" in wrong.output
    missing = runner.invoke(cli, ["alerts", "rules", "list", "nope"])
    assert missing.exit_code != 0 and "no model named" in missing.output


def test_alerts_listed_with_evidence(runner: CliRunner, churn: Container) -> None:
    plan = _plan(churn, "drift")
    with churn.write() as session:
        rollups.write(session, "churn", 1, 0, {"x3": 0.8, "x1": 0.1})
    with churn.write() as session:
        churn.alerts.evaluate(session, "churn", 1)
    [alert] = json.loads(_ok(runner, "alerts", "list", "--json"))
    assert (alert["model"], alert["state"], alert["evidence"]["breaching"]) == (
        "churn",
        "firing",
        ["x3"],
    )
    assert [(d["channel"], d["plan"], d["status"]) for d in alert["deliveries"]] == [
        ("retrain", plan, "pending")
    ]
    assert "breaching: x3" in _ok(runner, "alerts", "list")
    assert json.loads(_ok(runner, "alerts", "list", "--state", "resolved", "--json")) == []


def _plan(cofre: Container, on_alert: str) -> int:
    _data(cofre)
    request = PlanRequest("churn", "file", "fresh.csv", "label", "0 3 * * 1", "roc_auc", 0.01)
    plan = cofre.retraining.create_plan(SYSTEM, request)
    return cofre.retraining.set_on_alert(SYSTEM, plan.id, on_alert).id


def _data(cofre: Container) -> None:
    (cofre.settings.home / "datasets").mkdir(parents=True, exist_ok=True)
    drift.frame(200, seed=1).to_csv(cofre.settings.home / "datasets" / "fresh.csv", index=False)


def test_retrain_plan_on_alert(runner: CliRunner, churn: Container) -> None:
    _data(churn)
    plan = json.loads(
        _ok(
            runner,
            "retrain",
            "create",
            "churn",
            "--source",
            "fresh.csv",
            "--target",
            "label",
            "--schedule",
            "0 3 * * 1",
            "--metric",
            "roc_auc",
            "--on-alert",
            "drift",
            "--json",
        )
    )
    assert plan["on_alert"] == "drift"
    assert "on drift alerts" in _ok(runner, "retrain", "plans")
    changed = _ok(runner, "retrain", "update", str(plan["id"]), "--on-alert", "performance")
    assert "on performance alerts" in changed
    _ok(runner, "retrain", "update", str(plan["id"]), "--on-alert", "none")
    [listed] = json.loads(_ok(runner, "retrain", "plans", "--json"))
    assert listed["on_alert"] is None
    wrong = runner.invoke(cli, ["retrain", "update", str(plan["id"]), "--on-alert", "missing"])
    assert wrong.exit_code != 0
    with churn.read() as session:
        updates = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.kind == "retraining.plan_updated")
            .order_by(AuditRecord.seq)
        ).all()
        assert [(u.details["was"], u.details["on_alert"]) for u in updates] == [
            ("drift", "performance"),
            ("performance", None),
        ]
