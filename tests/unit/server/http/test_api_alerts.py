"""GET /api/v1/alerts and /api/v1/models/{name}/alert-rules: who reads them, who edits
rules, what a key limited to other models sees, and refusals of wrong rule bodies; a plan
set to run on an alert over the API."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support import alert_rollups as rollups
from tests.support import drift
from tests.support.models import CARD, iris_classifier

Keys = Callable[..., dict[str, str]]
RULES = "/api/v1/models/iris/alert-rules"


@pytest.fixture
def firing(cofre: Container) -> Container:
    """iris and churn published; iris has an alert firing on its version 1."""
    with cofre.write() as session:
        for name, artifact in (("iris", iris_classifier()), ("churn", drift.champion("old"))):
            request = PublishRequest(name, artifact, CARD, aliases=["production"])
            cofre.registry.publish(session, SYSTEM, request)
        rollups.write(session, "iris", 1, 0, {"petal width (cm)": 0.9, "sepal width (cm)": 0.1})
    with cofre.write() as session:
        cofre.alerts.evaluate(session, "iris", 1)
    return cofre


def test_readers_see_alerts_with_evidence_and_predictors_do_not(
    client: FlaskClient, firing: Container, api_key: Keys
) -> None:
    for role in ("publisher", "auditor", "admin"):
        response = client.get("/api/v1/alerts", headers=api_key(role))
        assert response.status_code == 200, role
        [alert] = response.get_json()["alerts"]
        assert (alert["model"], alert["version"], alert["state"]) == ("iris", 1, "firing")
        assert alert["evidence"]["breaching"] == ["petal width (cm)"]
        assert alert["evidence"]["figures"][0]["value"] == 0.9
        assert alert["rule"]["description"].startswith("drift: psi > 0.25")
    assert client.get("/api/v1/alerts", headers=api_key("predictor")).status_code == 403
    assert client.get("/api/v1/alerts").status_code == 401
    only = client.get("/api/v1/alerts?state=resolved", headers=api_key("admin")).get_json()
    assert only["alerts"] == []
    assert client.get("/api/v1/alerts?state=nope", headers=api_key("admin")).status_code == 422


def test_a_key_limited_to_other_models_sees_none_of_their_alerts_or_rules(
    client: FlaskClient, firing: Container, api_key: Keys
) -> None:
    scoped = api_key("publisher", models=["churn"])
    assert client.get("/api/v1/alerts", headers=scoped).get_json()["alerts"] == []
    assert client.get(RULES, headers=scoped).status_code == 403
    body = {"kind": "error_rate", "threshold": 0.1}
    assert client.post(RULES, json=body, headers=scoped).status_code == 403
    assert client.delete(f"{RULES}/default-1", headers=scoped).status_code == 403
    own = client.post("/api/v1/models/churn/alert-rules", json=body, headers=scoped)
    assert own.status_code == 201


def test_a_publisher_edits_rules_and_an_auditor_only_reads_them(
    client: FlaskClient, firing: Container, api_key: Keys
) -> None:
    publisher, auditor = api_key("publisher"), api_key("auditor")
    listed = client.get(RULES, headers=auditor).get_json()["rules"]
    assert [(r["ref"], r["source"], r["threshold"]) for r in listed] == [
        ("default-1", "config", 0.25)
    ]
    body = {"kind": "drift", "method": "wasserstein", "threshold": 0.5, "windows": 2}
    assert client.post(RULES, json=body, headers=auditor).status_code == 403
    added = client.post(RULES, json=body, headers=publisher)
    assert added.status_code == 201 and added.get_json()["windows"] == 2
    rules = client.get(RULES, headers=auditor).get_json()["rules"]
    assert [(r["source"], r["method"]) for r in rules] == [
        ("model", "psi"),
        ("model", "wasserstein"),
    ]
    removed = client.delete(f"{RULES}/{rules[0]['ref']}", headers=publisher)
    assert removed.status_code == 200 and removed.get_json()["removed"]["method"] == "psi"
    assert client.delete(f"{RULES}/{rules[0]['ref']}", headers=publisher).status_code == 404
    assert client.get("/api/v1/models/nope/alert-rules", headers=auditor).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "drift", "method": "psi"},
        {"kind": "drift", "method": "psi", "threshold": "high"},
        {"kind": "drift", "method": "psx", "threshold": 0.2},
        {"kind": "drift", "method": "psi", "threshold": 0.2, "windows": 0},
        {"kind": "error_rate", "threshold": 0.2, "feature": "age"},
        {"kind": "weather", "threshold": 0.2},
        {"kind": "drift", "method": "psi", "threshold": 0.2, "windows": True},
    ],
)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_wrong_rules_get_422(
    client: FlaskClient, firing: Container, api_key: Keys, body: dict[str, object]
) -> None:
    response = client.post(RULES, json=body, headers=api_key("publisher"))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unknown_rule_fields_get_400(client: FlaskClient, firing: Container, api_key: Keys) -> None:
    body = {"kind": "drift", "threshold": 0.2, "colour": "red"}
    assert client.post(RULES, json=body, headers=api_key("publisher")).status_code == 400


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_plan_is_set_to_run_on_alerts(
    client: FlaskClient, firing: Container, api_key: Keys
) -> None:
    (firing.settings.home / "datasets").mkdir(parents=True, exist_ok=True)
    drift.frame(200, seed=1).to_csv(firing.settings.home / "datasets" / "fresh.csv", index=False)
    plan = {
        "model": "churn",
        "source_kind": "file",
        "source": "fresh.csv",
        "target": "label",
        "schedule": "0 3 * * 1",
        "metric": "roc_auc",
        "on_alert": "drift",
    }
    publisher = api_key("publisher")
    created = client.post("/api/v1/operations/retraining/plans", json=plan, headers=publisher)
    assert created.status_code == 201 and created.get_json()["on_alert"] == "drift"
    url = f"/api/v1/operations/retraining/plans/{created.get_json()['id']}"
    changed = client.patch(url, json={"on_alert": "performance"}, headers=publisher)
    assert changed.status_code == 200 and changed.get_json()["on_alert"] == "performance"
    cleared = client.patch(url, json={"on_alert": None}, headers=publisher)
    assert cleared.get_json()["on_alert"] is None
    assert client.patch(url, json={"on_alert": "weather"}, headers=publisher).status_code == 422
    assert client.patch(url, json={"schedule": "x"}, headers=publisher).status_code == 422
    wrong = client.post(
        "/api/v1/operations/retraining/plans", json=plan | {"on_alert": "x"}, headers=publisher
    )
    assert wrong.status_code == 422
    scoped = api_key("publisher", models=["iris"])
    assert client.patch(url, json={"on_alert": None}, headers=scoped).status_code == 403
    assert client.patch(url, json={"on_alert": None}, headers=api_key("auditor")).status_code == 403
