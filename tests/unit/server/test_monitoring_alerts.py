"""The alert rules are judged right after a report is stored, by the monitoring job and
by `cofre monitor` alike: traffic with x1 shifted fires the default PSI rule on x1 (not
on x0 or x2), once, whichever of the two computed the report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from server.cli import cli
from server.container import Container
from server.jobs import job_work
from tests.support.models import CARD
from tests.support.monitoring import classifier, normal_frame, reference_csv
from tests.support.scoring import score


@pytest.fixture
def risk(cofre: Container) -> Container:
    request = PublishRequest(
        name="risk",
        artifact=classifier(),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(reference_csv(), "csv"),
    )
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)
    rows = normal_frame(400, seed=3, shift={"x1": 2.0}).to_dict("records")
    for index in range(4):
        score(cofre, [None] * 100, name="risk", rows=rows[index * 100 : (index + 1) * 100])
    return cofre


def _firing(cofre: Container) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == "alert.firing")
        found = list(session.scalars(stmt))
        session.expunge_all()
        return found


def test_cofre_monitor_fires_the_default_rule_on_the_shifted_feature(
    risk: Container, runner: CliRunner
) -> None:
    result = runner.invoke(cli, ["monitor", "risk", "--json"])
    assert result.exit_code == 0, result.output
    [alert] = json.loads(result.output)["alerts"]
    assert (alert["model_name"], alert["model_version"], alert["state"]) == ("risk", 1, "firing")
    assert "x1" in alert["evidence"]["breaching"]
    assert not {"x0", "x2"} & set(alert["evidence"]["breaching"])
    x1 = next(f for f in alert["evidence"]["figures"] if f["feature"] == "x1")
    assert x1["value"] > 0.25 and x1["rows"] == 400
    [event] = _firing(risk)
    assert event.actor_id.startswith("cli:")
    # The job computes the same window again: the alert is still firing, not fired twice.
    message = job_work(risk, "monitoring")(risk)
    assert "alerts:" not in message
    assert len(_firing(risk)) == 1
    text = runner.invoke(cli, ["alerts", "list"]).output
    assert "firing" in text and "risk v1" in text


def test_the_monitoring_job_fires_it_too(risk: Container, runner: CliRunner) -> None:
    message = job_work(risk, "monitoring")(risk)
    assert message.endswith("; alerts: 1 fired, 0 resolved")
    [event] = _firing(risk)
    assert event.actor_id == "system" and event.model_version == 1
    printed = runner.invoke(cli, ["monitor", "risk"]).output
    assert "\nalert " not in printed and not printed.startswith("alert ")  # nothing changed
