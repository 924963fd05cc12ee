"""Alerts pages: a firing alert on the dashboard and the alerts page with its evidence; a
model's rules added and removed by a publisher through the forms (CSRF checked, audited),
read but not changed by an auditor."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support import alert_rollups as rollups
from tests.support.models import CARD, iris_classifier

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def firing(cofre: Container) -> Container:
    with cofre.write() as session:
        request = PublishRequest("iris", iris_classifier(), CARD, aliases=["production"])
        cofre.registry.publish(session, SYSTEM, request)
        rollups.write(session, "iris", 1, 0, {"petal width (cm)": 0.9})
    with cofre.write() as session:
        cofre.alerts.evaluate(session, "iris", 1)
    return cofre


@pytest.mark.parametrize("role", ["admin", "publisher", "auditor"])
def test_a_firing_alert_shows_on_the_dashboard_and_the_alerts_page(
    client: FlaskClient, firing: Container, signed_in: Callable[[str], str], role: str
) -> None:
    signed_in(role)
    dashboard = client.get("/admin/").text
    assert 'id="firing-alerts"' in dashboard
    assert "iris v1</a>: drift: psi &gt; 0.25 on any feature" in dashboard
    assert "(petal width (cm))" in dashboard
    page = client.get("/admin/alerts/")
    assert page.status_code == 200
    assert 'id="alert-1" class="alert-firing"' in page.text
    assert "petal width (cm): 0.9 over 500 rows" in page.text
    assert 'href="/admin/alerts/">Alerts</a>' in page.text
    assert ("Add a rule" in client.get("/admin/alerts/rules/iris").text) == (role != "auditor")


def test_no_firing_alert_says_none(
    client: FlaskClient, cofre: Container, signed_in: Callable[[str], str]
) -> None:
    signed_in("publisher")
    card = client.get("/admin/").text.split('id="firing-alerts"')[1].split("</section>")[0]
    assert "none" in card


def test_a_publisher_adds_and_removes_rules_through_the_forms(
    client: FlaskClient, firing: Container, signed_in: Callable[[str], str]
) -> None:
    token = signed_in("publisher")
    form = {"kind": "missing", "threshold": "0.2", "feature": "age", "windows": "2"}
    refused = client.post("/admin/alerts/rules/iris", data=form)
    assert refused.status_code == 403  # no CSRF token
    added = client.post("/admin/alerts/rules/iris", data=form | {"csrf_token": token})
    assert added.status_code == 303
    page = client.get(added.headers["Location"]).text
    assert "The rule was added." in page
    assert "missing: missing_share &gt; 0.2 on age in 2 consecutive windows" in page
    removed = client.post("/admin/alerts/rules/iris/1/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    page = client.get("/admin/alerts/rules/iris").text
    assert "psi &gt; 0.25" not in page and "on age" in page
    wrong = client.post(
        "/admin/alerts/rules/iris", data={"kind": "drift", "threshold": "x", "csrf_token": token}
    )
    assert wrong.status_code == 422
    with firing.read() as session:
        kinds = [r.kind for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
    assert kinds.count("alert.rule_added") == 1 and kinds.count("alert.rule_removed") == 1


def test_an_auditor_cannot_change_rules(
    client: FlaskClient, firing: Container, signed_in: Callable[[str], str]
) -> None:
    token = signed_in("auditor")
    form = {"kind": "error_rate", "threshold": "0.1", "csrf_token": token}
    assert client.post("/admin/alerts/rules/iris", data=form).status_code == 403


def test_the_retraining_page_says_which_alerts_run_a_plan(
    client: FlaskClient, firing: Container, signed_in: Callable[[str], str]
) -> None:
    from governance.clock import utcnow
    from governance.retraining.records import RetrainingPlan

    with firing.write() as session:
        session.add(
            RetrainingPlan(
                model_name="iris",
                source_kind="file",
                source="f.csv",
                target="y",
                schedule="0 3 * * 1",
                metric="accuracy",
                min_improvement=0.01,
                holdout=0.25,
                enabled=True,
                on_alert="performance",
                created_by="t",
                created_at=utcnow(),
            )
        )
    signed_in("publisher")
    row = client.get("/admin/operations/retraining").text.split('id="plan-1"')[1]
    assert "<td>performance</td>" in row.split("</tr>")[0]
