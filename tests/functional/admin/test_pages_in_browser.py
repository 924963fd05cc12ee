"""The admin pages in headless Chromium against the app under real Gunicorn."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.functional.admin.conftest import (
    HOSTILE,
    SUBJECT,
    Appliance,
    screenshot,
    sign_in,
)

pytestmark = pytest.mark.functional

ADMIN_PAGES = (
    "/admin/",
    "/admin/audit/",
    "/admin/audit/records/1",
    "/admin/audit/verify",
    "/admin/models/",
    "/admin/models/iris",
    "/admin/models/iris/versions/1",
    "/admin/publish",
    "/admin/traffic",
    "/admin/users",
    "/admin/keys",
)


def _search(page: Any, field: str, value: str) -> None:
    page.goto("/admin/audit/")
    page.fill(f"input[name={field}]", value)
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()


def test_auditor_finds_reads_verifies_and_exports(context: Any, appliance: Appliance) -> None:
    page = context.new_page()
    sign_in(page, "auditor")
    screenshot(page, "dashboard")

    _search(page, "request_id", "req-single")
    assert "1 record" in page.inner_text("#result-count")
    screenshot(page, "audit-search")
    page.click("table.records tbody tr a")
    page.wait_for_url("**/admin/audit/records/*")
    body = page.inner_text("main")
    assert '"petal_mm": 51' in body
    assert appliance.sha256 in body
    assert "iris version 1" in body
    screenshot(page, "audit-record")

    _search(page, "subject_id", SUBJECT)
    assert SUBJECT not in page.url  # only the pseudonym travels in URLs and logs
    assert "2 records" in page.inner_text("#result-count")
    found = page.locator("table.records tbody td code").all_inner_texts()
    assert sorted(found) == ["req-batch", "req-single"]

    page.goto("/admin/audit/verify")
    page.click("text=Verify chain now")
    page.wait_for_url("**/admin/audit/verify")
    assert page.inner_text("#verification h2") == "OK"
    screenshot(page, "verify-ok")

    page.goto("/admin/audit/")
    page.fill("section.exports input[name=subject_id]", SUBJECT)
    with page.expect_download() as download:
        page.click("section.exports form:nth-of-type(2) button[value=json]")
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    rows = [row for record in exported["records"] for row in record["rows"]]
    assert sorted(r["data"]["inputs"]["petal_mm"] for r in rows) == [49, 51]  # not patient-7's
    assert {r["request_id"] for r in exported["records"]} == {"req-single", "req-batch"}


def test_tampered_record_is_named_on_the_verify_page(context: Any, appliance: Appliance) -> None:
    with sqlite3.connect(appliance.database) as db:
        (seq, outcome) = db.execute(
            "SELECT seq, outcome FROM audit_records WHERE request_id = 'req-failed'"
        ).fetchone()
        db.execute("UPDATE audit_records SET outcome = 'ok' WHERE seq = ?", (seq,))
    try:
        page = context.new_page()
        sign_in(page, "auditor")
        page.goto("/admin/audit/verify")
        page.click("text=Verify chain now")
        page.wait_for_url("**/admin/audit/verify")
        assert page.inner_text("#bad-seq") == str(seq)
        assert "edited" in page.inner_text("#verification")
        screenshot(page, "verify-tampered")
    finally:
        with sqlite3.connect(appliance.database) as db:
            db.execute("UPDATE audit_records SET outcome = ? WHERE seq = ?", (outcome, seq))


def test_publisher_promotes_and_rolls_back(context: Any, appliance: Appliance) -> None:
    page = context.new_page()
    sign_in(page, "publisher")
    page.goto("/admin/models/iris")
    assert page.inner_text("#alias-production .alias-version") == "v1"
    page.select_option("select[name=version]", "2")
    page.click("text=Promote…")
    assert "at v2" in page.inner_text("form.confirm")
    screenshot(page, "promote-confirm")
    page.click("text=Yes, promote")
    page.wait_for_url("**/admin/models/iris?done=promoted")
    assert page.inner_text("#alias-production .alias-version") == "v2"
    page.click("#alias-production >> text=Roll back…")
    page.click("text=Yes, roll back")
    page.wait_for_url("**/admin/models/iris?done=rolled-back")
    assert page.inner_text("#alias-production .alias-version") == "v1"
    screenshot(page, "model")


def test_anonymous_and_predictor_are_refused_everywhere(context: Any, appliance: Appliance) -> None:
    page = context.new_page()
    for path in ADMIN_PAGES:
        page.goto(path)
        assert "/admin/login" in page.url, path
    bearer = {"Authorization": f"Bearer {appliance.predictor_secret}"}
    for path in ADMIN_PAGES:
        response = context.request.get(path, headers=bearer, max_redirects=0)
        assert response.status == 403, path
    response = context.request.post(
        "/admin/audit/verify", headers=bearer, form={"x": "1"}, max_redirects=0
    )
    assert response.status == 403


def test_form_post_without_csrf_token_is_refused(context: Any, appliance: Appliance) -> None:
    page = context.new_page()
    sign_in(page, "publisher")
    # Same cookies as the signed-in page, but no token: what a forged form would send.
    response = context.request.post(
        "/admin/models/iris/promote", form={"alias": "production", "version": "2"}
    )
    assert response.status == 403
    page.goto("/admin/models/iris")
    assert page.inner_text("#alias-production .alias-version") == "v1"


def test_hostile_model_name_renders_as_text(context: Any, appliance: Appliance) -> None:
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, "publisher")
    page.goto("/admin/models/")
    page.click(f"text={HOSTILE}")
    page.wait_for_load_state()
    assert page.inner_text("#model-name") == HOSTILE
    assert page.locator("script").count() == 0
    assert dialogs == []
    screenshot(page, "hostile-name")


def test_old_session_id_fails_after_logout(
    context: Any, browser: Any, appliance: Appliance
) -> None:
    page = context.new_page()
    sign_in(page, "auditor")
    old = next(c for c in context.cookies() if c["name"] == "cofre_session")
    page.click("text=Sign out")
    page.wait_for_url("**/admin/login?bye=1")
    replay = browser.new_context(base_url=appliance.url)
    try:
        replay.add_cookies([old])
        other = replay.new_page()
        other.goto("/admin/audit/")
        assert "/admin/login" in other.url
    finally:
        replay.close()


def test_traffic_page_draws_the_predictions(context: Any, appliance: Appliance) -> None:
    page = context.new_page()
    sign_in(page, "publisher")
    page.goto("/admin/traffic")
    assert page.inner_text("section.traffic .requests") == "3"
    assert page.locator("svg.chart rect").count() > 0
    screenshot(page, "traffic")


def test_monitoring_page_shows_the_drifting_feature_first(
    context: Any, appliance: Appliance
) -> None:
    page = context.new_page()
    sign_in(page, "auditor")
    page.click("nav >> text=Monitoring")
    page.wait_for_url("**/admin/monitoring")
    assert "x2" in page.inner_text("table.monitoring")
    page.click("table.monitoring >> text=risk")
    page.wait_for_url("**/admin/models/risk/monitoring*")
    first = page.locator("table.features tbody tr").first
    assert first.get_attribute("id") == "feature-x2"
    assert "drifting" in (first.get_attribute("class") or "")
    assert (
        page.locator("section.drift-chart svg polyline, section.drift-chart svg circle").count() > 0
    )
    screenshot(page, "monitoring")
    first.locator("td.psi a").click()
    page.wait_for_url("**/admin/audit/**")
    assert "2 records" in page.inner_text("#result-count")
