"""The Monitoring pages: the overview, a version's report with the drifting feature
first, charts as inline SVG, and links to the audit records only for auditors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD
from tests.support.monitoring import classifier, normal_frame, reference_csv
from tests.support.scoring import score


@pytest.fixture
def monitored(cofre: Container) -> Container:
    request = PublishRequest(
        name="risk",
        artifact=classifier(),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(reference_csv(), "csv"),
    )
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)
    rows = normal_frame(300, seed=3, shift={"x2": 2.0}).to_dict("records")
    for index in range(3):
        score(cofre, [None] * 100, name="risk", rows=rows[index * 100 : (index + 1) * 100])
    with cofre.read() as session:
        cofre.monitoring.run(session, "risk", 1, timedelta(hours=24))
    return cofre


def test_the_report_puts_the_drifting_feature_first(
    monitored: Container, client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    signed_in("auditor")
    overview = client.get("/admin/monitoring")
    assert overview.status_code == 200 and "x2" in overview.text
    page = client.get("/admin/models/risk/monitoring")
    assert page.status_code == 200
    html = page.text
    first = html.index('id="feature-')
    assert html[first:].startswith('id="feature-x2"')
    assert html.count("<svg") >= 4  # one PSI chart per feature and the output
    assert "<script" not in html
    assert "/admin/audit/?" in html and "kind=prediction" in html and "model=risk" in html


def test_publishers_see_figures_without_links_to_the_log(
    monitored: Container, client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    signed_in("publisher")
    html = client.get("/admin/models/risk/monitoring?window=24h").text
    assert 'id="feature-x2"' in html and "/admin/audit/?" not in html
    missing = client.get("/admin/models/risk/monitoring?window=7d").text
    assert "No report of this version" in missing


def test_predictors_and_other_models_keys_may_not_see_it(
    monitored: Container, client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    page = "/admin/models/risk/monitoring"
    assert client.get(page, headers=api_key("predictor")).status_code == 403
    assert client.get(page, headers=api_key("auditor", ["other"])).status_code == 403
    assert client.get(page, headers=api_key("auditor", ["risk"])).status_code == 200


def test_traffic_page_and_dashboard_read_the_traffic_rollups(
    monitored: Container, client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    signed_in("publisher")
    page = client.get("/admin/traffic").text
    assert '<td class="requests">3</td>' in page and "risk v1" in page
    assert page.count("<rect") >= 2 * 24  # an answered and an error bar per hour
    score(monitored, [None], name="risk", rows=normal_frame(1, seed=9).to_dict("records"))
    # Not counted until the monitoring job runs again: pages never scan the log.
    assert '<td class="requests">3</td>' in client.get("/admin/traffic").text
    with monitored.read() as session:
        monitored.monitoring.run_due(session, monitored.monitoring_window)
    assert '<td class="requests">4</td>' in client.get("/admin/traffic").text
    assert "4 <small>requests since" in client.get("/admin/").text


def test_the_upload_form_takes_reference_data(
    cofre: Container, client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    from io import BytesIO

    csrf = signed_in("publisher")
    assert 'name="reference_data"' in client.get("/admin/publish").text
    response = client.post(
        "/admin/publish",
        data={
            "csrf_token": csrf,
            "name": "risk",
            "purpose": "p",
            "legal_basis": "l",
            "file": (BytesIO(classifier()), "risk.skops"),
            "reference_data": (BytesIO(reference_csv(500)), "reference.csv"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    with cofre.read() as session:
        profile = cofre.registry.profiles.get(session, "risk", 1)
    assert profile is not None and profile.source == "reference" and profile.rows == 500


def test_line_charts_scale_to_the_values_and_thresholds() -> None:
    from server.admin.charts import HEIGHT, PAD, line_chart

    chart = line_chart([("a", 0.05), ("b", None), ("c", 0.5)], (0.1, 0.25))
    assert [p.title for p in chart.points] == ["a: 0.05", "c: 0.5"]
    assert chart.top == pytest.approx(0.55)
    assert chart.points[1].y < chart.rules[1].y < chart.rules[0].y < chart.points[0].y
    assert all(PAD <= p.y <= HEIGHT - PAD for p in chart.points)
    assert (chart.first, chart.last) == ("a", "c")
