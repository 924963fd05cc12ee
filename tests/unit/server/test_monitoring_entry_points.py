"""`cofre monitor`, GET /api/v1/models/{name}/monitoring, the monitoring job and the
Prometheus gauges: one computation, stored once, read back the same everywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from server.cli import cli
from server.container import Container
from server.jobs import job_work
from tests.support.models import CARD
from tests.support.monitoring import classifier, normal_frame, reference_csv
from tests.support.scoring import score

Headers = dict[str, str]


@pytest.fixture
def risk(cofre: Container) -> Container:
    """Model `risk` published with reference data, and traffic with x1 shifted."""
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


def _monitor(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(cli, ["monitor", "risk", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cofre_monitor_stores_what_the_api_returns(
    risk: Container, runner: CliRunner, client: FlaskClient, api_key: Callable[..., Headers]
) -> None:
    printed = json.loads(_monitor(runner, "--json"))["reports"]
    assert [r["version"] for r in printed] == [1]
    assert [f for f in printed[0]["drifting"] if f != "__output__"] == ["x1"]
    for role in ("publisher", "auditor", "admin"):
        response = client.get("/api/v1/models/risk/monitoring?window=24h", headers=api_key(role))
        assert response.status_code == 200, response.json
        body = response.json
        assert body["drift"] == printed[0]["drift"] and body["window"] == printed[0]["window"]
        assert body["traffic"]["requests"] == 4
        assert body["rows"] == printed[0]["rows"] == {"seen": 400, "erased": 0}
    text = _monitor(runner, "--version", "1")
    assert "DRIFT x1" in text and "ok    x0" in text


def test_the_api_refuses_whom_it_should(
    risk: Container, client: FlaskClient, api_key: Callable[..., Headers]
) -> None:
    url = "/api/v1/models/risk/monitoring"
    assert client.get(url, headers=api_key("predictor")).status_code == 403
    assert client.get(url, headers=api_key("auditor", models=["other"])).status_code == 403
    missing = client.get(url, headers=api_key("auditor", models=["risk"]))
    assert missing.status_code == 404 and "no monitoring report" in missing.json["detail"]
    assert client.get(f"{url}?window=soon", headers=api_key("admin")).status_code == 422
    assert client.get(f"{url}?version=9", headers=api_key("admin")).status_code == 404


def test_the_job_and_the_gauges(
    risk: Container, client: FlaskClient, api_key: Callable[..., Headers]
) -> None:
    message = job_work(risk, "monitoring")(risk)
    assert "risk v1: x1" in message
    body = client.get("/metrics", headers=api_key("admin")).get_data(as_text=True)
    lines = [line for line in body.splitlines() if line.startswith("cofre_feature_drift{")]
    psi = {
        line.split('feature="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if 'method="psi"' in line
    }
    assert psi["x1"] > 0.25 and psi["x0"] < 0.1 and psi["x2"] < 0.1
    assert 'model="risk"' in lines[0] and 'version="1"' in lines[0]


def test_cofre_monitor_refuses_in_one_line(risk: Container, runner: CliRunner) -> None:
    for args in (["monitor", "nobody"], ["monitor", "risk", "--window", "soon"]):
        result = runner.invoke(cli, args)
        assert result.exit_code != 0
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_keys_limited_to_other_models_see_none_of_its_figures(
    risk: Container, client: FlaskClient, api_key: Callable[..., Headers]
) -> None:
    job_work(risk, "monitoring")(risk)
    other = api_key("admin", models=["other"])
    assert "cofre_feature_drift{" not in client.get("/metrics", headers=other).get_data(
        as_text=True
    )
    assert "cofre_feature_drift{" in client.get("/metrics", headers=api_key("admin")).get_data(
        as_text=True
    )
    assert "risk v1" not in client.get("/admin/traffic", headers=other).get_data(as_text=True)
    assert "risk v1" in client.get("/admin/traffic", headers=api_key("admin")).get_data(
        as_text=True
    )


def test_the_job_and_cofre_monitor_judge_the_alert_rules_on_what_they_stored(
    risk: Container, runner: CliRunner, client: FlaskClient, api_key: Callable[..., Headers]
) -> None:
    """The default rule (PSI above 0.25 on any feature) fires on x1 after the job, and a
    later `cofre monitor` of the same window finds it still firing: no second alert."""
    message = job_work(risk, "monitoring")(risk)
    assert "alerts: 1 fired" in message or "alerts: 2 fired" in message, message
    listed = client.get("/api/v1/alerts", headers=api_key("auditor")).json
    firing = [a for a in listed["alerts"] if a["state"] == "firing"]
    assert firing and all(a["model"] == "risk" for a in firing)
    printed = json.loads(_monitor(runner, "--json"))
    assert printed["alerts"] == []  # already firing: no transition
    again = client.get("/api/v1/alerts", headers=api_key("auditor")).json
    assert len([a for a in again["alerts"] if a["state"] == "firing"]) == len(firing)
