"""A contested decision reviewed in headless Chromium against real Gunicorn: the review
page shows the explanation by the version that decided, the opener is refused, another
person decides it, and the chain records both."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.accounts.records import User
from governance.accounts.service import user_actor
from governance.subjects.caller import Caller
from tests.functional.admin.conftest import Appliance, screenshot, sign_in

pytestmark = pytest.mark.functional
ROW = {
    "sepal length (cm)": 6.1,
    "sepal width (cm)": 2.8,
    "petal length (cm)": 4.7,
    "petal width (cm)": 1.2,
}


def _predict(appliance: Appliance, subject: str) -> str:
    request = urllib.request.Request(
        appliance.url + "/api/v1/models/iris/predict",
        data=json.dumps({"instances": [ROW], "subject_ids": [subject]}).encode(),
        headers={
            "Authorization": f"Bearer {appliance.predictor_secret}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.load(answer)["request_id"])


def test_a_review_goes_from_open_to_decided(
    context: Any, browser: Any, appliance: Appliance
) -> None:
    container = appliance.container
    request_id = _predict(appliance, "maria-1")
    with container.read() as session:
        auditor = session.scalars(select(User).where(User.username == "auditor")).one()
    opened = container.reviews.open(
        Caller(user_actor(auditor), "api"), request_id, 0, "I was classified wrongly"
    )
    review_url = f"/admin/reviews/{opened.review.id}"

    page = context.new_page()
    sign_in(page, "auditor")
    page.goto("/admin/reviews/?status=open")
    page.click(f"a[href='{review_url}']")
    page.wait_for_url(f"**{review_url}")
    explanation = page.inner_text("#explanation")
    assert "linear (exact" in explanation and "logit (softmax input) of class" in explanation
    assert "iris version 1" in explanation and "petal length (cm)" in explanation
    assert page.inner_text("#review-reason") == "I was classified wrongly"
    assert page.inner_text("#review-status") == "open"
    screenshot(page, "review-open")
    page.select_option("#decide select[name=outcome]", "upheld")
    page.fill("#decide textarea[name=reason]", "I opened it myself")
    page.click("#decide button[type=submit]")
    page.wait_for_load_state()
    assert "separation of duties" in page.inner_text("main")
    screenshot(page, "review-refused")

    admin_context = browser.new_context(base_url=appliance.url)
    admin_context.set_default_timeout(10_000)
    try:
        other = admin_context.new_page()
        sign_in(other, "admin")
        other.goto(review_url)
        other.select_option("#decide select[name=outcome]", "overturned")
        other.fill("#decide textarea[name=reason]", "the petal length was mismeasured")
        other.fill("#decide input[name=corrected_output]", "1")
        other.click("#decide button[type=submit]")
        other.wait_for_url(f"**{review_url}?done=decided")
        assert other.inner_text("#review-status") == "decided"
        assert other.inner_text("#review-outcome").startswith("overturned by admin")
        assert "linear (exact" in other.inner_text("#explanation")
        screenshot(other, "review-decided")
    finally:
        admin_context.close()
    with container.read() as session:
        [view] = container.reviews.listing(session, user_actor(auditor), "decided")
        assert view.review.decided_by == "admin" and view.review.outcome == "overturned"
        records = container.audit_search.matching(session, SYSTEM, _kind_query("review.decided"))
        assert [r.outcome for r in records] == ["denied", "ok"]
        assert container.audit.verify(session).ok


def _kind_query(kind: str) -> Any:
    from governance.audit.search import AuditQuery

    return AuditQuery(kind=kind)
