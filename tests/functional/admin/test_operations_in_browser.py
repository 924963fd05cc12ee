"""The operations page in headless Chromium: an admin runs a backup through the
confirmation step under real Gunicorn and finds it listed, verified."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.admin.conftest import Appliance, screenshot, sign_in

pytestmark = pytest.mark.functional


def test_admin_runs_a_backup_and_sees_it_listed(context: Any, appliance: Appliance) -> None:
    page = context.new_page()
    sign_in(page, "admin")
    page.click("header.top nav >> text=Operations")
    page.wait_for_url("**/admin/operations/")
    assert "No backup yet." in page.inner_text("table.backups")
    assert "UTC+00:00" in page.inner_text("#job-backup .next-run")

    page.click("text=Run backup now…")
    page.wait_for_url("**/admin/operations/backups/run")
    screenshot(page, "backup-confirm")
    page.click("text=Yes, back up now")
    page.wait_for_url("**/admin/operations/?done=backed-up*")

    [entry] = appliance.container.backups.entries()
    assert page.inner_text("p.notice") == "The backup was written and verified."
    row = page.locator(f"#backup-{entry.id}")
    assert row.locator("td.verified").inner_text().startswith("yes")
    assert entry.id in row.inner_text()
    screenshot(page, "operations")
