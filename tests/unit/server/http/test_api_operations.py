"""/api/v1/operations: who may read and run backups, jobs and retraining, and what they see."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support import drift
from tests.support.models import CARD

Keys = Callable[..., dict[str, str]]
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@sqlite_only
def test_roles_on_backups(client: FlaskClient, api_key: Keys) -> None:
    admin, auditor, predictor = api_key("admin"), api_key("auditor"), api_key("predictor")
    assert client.get("/api/v1/operations/backups", headers=predictor).status_code == 403
    assert client.get("/api/v1/operations/jobs", headers=predictor).status_code == 403
    assert client.post("/api/v1/operations/backups", headers=auditor).status_code == 403
    created = client.post("/api/v1/operations/backups", headers=admin)
    assert created.status_code == 201, created.get_json()
    backup_id = created.get_json()["id"]
    listed = client.get("/api/v1/operations/backups", headers=auditor).get_json()["backups"]
    assert [b["id"] for b in listed] == [backup_id] and listed[0]["verified"]
    verified = client.post(f"/api/v1/operations/backups/{backup_id}/verify", headers=admin)
    assert verified.status_code == 200 and verified.get_json()["ok"] is True
    missing = client.post("/api/v1/operations/backups/nonsense/verify", headers=admin)
    assert missing.status_code == 422


def test_jobs_endpoint_lists_schedule_and_history(client: FlaskClient, api_key: Keys) -> None:
    body = client.get("/api/v1/operations/jobs", headers=api_key("publisher")).get_json()
    assert {j["job"] for j in body["jobs"]} == {
        "backup",
        "restore-drill",
        "audit-checkpoint",
        "retention",
        "monitoring",
        "alert-retraining",
        "storage",
        "extraction",
    }
    assert all(j["next_run"] for j in body["jobs"]) and body["runs"] == []


@sqlite_only
def test_publisher_registers_and_runs_a_plan(
    client: FlaskClient, cofre: Container, api_key: Keys
) -> None:
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"]),
        )
    datasets = cofre.settings.home / "datasets"
    datasets.mkdir()
    drift.frame(600, seed=1).to_csv(datasets / "fresh.csv", index=False)
    publisher, auditor = api_key("publisher"), api_key("auditor")
    plan = {
        "model": "churn",
        "source_kind": "file",
        "source": "fresh.csv",
        "target": "label",
        "schedule": "0 3 * * 1",
        "metric": "roc_auc",
        "min_improvement": 0.02,
    }
    assert (
        client.post("/api/v1/operations/retraining/plans", json=plan, headers=auditor).status_code
        == 403
    )
    bad = client.post(
        "/api/v1/operations/retraining/plans",
        json=plan | {"schedule": "99 * * * *"},
        headers=publisher,
    )
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "schedule"
    created = client.post("/api/v1/operations/retraining/plans", json=plan, headers=publisher)
    assert created.status_code == 201, created.get_json()
    plan_id = created.get_json()["id"]
    ran = client.post(f"/api/v1/operations/retraining/plans/{plan_id}/runs", headers=publisher)
    assert ran.status_code == 201 and ran.get_json()["decision"] == "registered"
    runs = client.get("/api/v1/operations/retraining/runs", headers=auditor).get_json()["runs"]
    assert runs[0]["rows"] == 600 and len(runs[0]["data_sha256"]) == 64
    jobs = client.get("/api/v1/operations/jobs", headers=auditor).get_json()
    assert f"retrain:{plan_id}" in {j["job"] for j in jobs["jobs"]}
    assert jobs["runs"][0]["job"] == f"retrain:{plan_id}" and jobs["runs"][0]["outcome"] == "ok"


@sqlite_only
def test_a_model_scoped_key_plans_and_runs_retraining_of_its_models_only(
    client: FlaskClient, cofre: Container, api_key: Keys
) -> None:
    """Issue 14.2: the model is named in the body, so the route guard never saw it (201)."""
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest("churn", drift.champion("old"), CARD, aliases=["production"]),
        )
    datasets = cofre.settings.home / "datasets"
    datasets.mkdir()
    drift.frame(300, seed=1).to_csv(datasets / "fresh.csv", index=False)
    plan = {
        "model": "churn",
        "source_kind": "file",
        "source": "fresh.csv",
        "target": "label",
        "schedule": "0 3 * * 1",
        "metric": "roc_auc",
    }
    scoped = api_key("publisher", models=["iris"])
    url = "/api/v1/operations/retraining/plans"
    assert client.post(url, json=plan, headers=scoped).status_code == 403
    created = client.post(url, json=plan, headers=api_key("publisher"))
    assert created.status_code == 201, created.get_json()
    plan_id = created.get_json()["id"]
    assert client.post(f"{url}/{plan_id}/runs", headers=scoped).status_code == 403
    assert client.get(f"{url}/{plan_id}", headers=scoped).status_code == 403
    assert client.get(url, headers=scoped).get_json()["plans"] == []
    with cofre.read() as session:
        assert cofre.retraining.runs(session, SYSTEM) == []
