"""Alerts in headless Chromium under real Gunicorn: a firing alert appears on the
dashboard, links to its evidence, and a publisher edits the model's rules by the forms."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.admin.conftest import Appliance, screenshot, sign_in
from tests.support import alert_rollups as rollups

pytestmark = pytest.mark.functional


def test_a_firing_alert_on_the_dashboard_and_rules_edited(
    context: Any, appliance: Appliance
) -> None:
    page = context.new_page()
    sign_in(page, "publisher")
    assert "none" in page.inner_text("#firing-alerts")

    cofre = appliance.container  # the monitoring job's part: rollups stored, rules evaluated
    with cofre.write() as session:
        rollups.write(session, "iris", 1, 0, {"petal length (cm)": 0.61, "sepal width (cm)": 0.02})
    with cofre.write() as session:
        [fired] = cofre.alerts.evaluate(session, "iris", 1)

    page.goto("/admin/")
    card = page.inner_text("#firing-alerts")
    assert "iris v1: drift: psi > 0.25 on any feature" in card
    assert "petal length (cm)" in card and "sepal width" not in card
    screenshot(page, "dashboard-firing-alert")
    page.click("#firing-alerts a")
    page.wait_for_url("**/admin/alerts/?state=firing*")
    row = page.inner_text(f"#alert-{fired.alert_id}")
    assert "firing" in row and "petal length (cm): 0.61 over 500 rows" in row
    screenshot(page, "alerts")

    page.click(f"#alert-{fired.alert_id} a")  # the model's rules
    page.wait_for_url("**/admin/alerts/rules/iris")
    page.select_option("select[name=kind]", "error_rate")
    page.fill("input[name=threshold]", "0.95")
    page.click("form.inline button[type=submit]")
    page.wait_for_url("**/admin/alerts/rules/iris?done=added")
    rules = page.inner_text("table.alert-rules")
    assert "error_rate: error_rate > 0.95" in rules and "psi > 0.25" in rules
    page.click("#rule-1 button")
    page.wait_for_url("**/admin/alerts/rules/iris?done=removed")
    assert "psi > 0.25" not in page.inner_text("table.alert-rules")
    screenshot(page, "alert-rules")

    with cofre.write() as session:  # the next evaluation resolves it: its rule is gone
        assert [t.state for t in cofre.alerts.evaluate(session, "iris", 1)] == ["resolved"]
    page.goto("/admin/")
    assert "none" in page.inner_text("#firing-alerts")
