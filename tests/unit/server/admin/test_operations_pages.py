"""Operations pages: who may read and act, CSRF on the actions, running and verifying
a backup (audited), the schedule, the paginated job history and retraining runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.audit.records import AuditRecord
from governance.clock import utcnow
from governance.operations.jobs import RunEnd
from governance.retraining.records import RetrainingPlan, RetrainingRun
from server.container import Container

PAGES = ("/admin/operations/", "/admin/operations/retraining")


def _events(cofre: Container, kind: str) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == kind).order_by(AuditRecord.seq)
        found = list(session.scalars(stmt))
        session.expunge_all()
        return found


@pytest.mark.parametrize("role", ["admin", "publisher", "auditor"])
def test_readers_see_the_pages_and_the_nav_link(
    client: FlaskClient, signed_in: Callable[[str], str], role: str
) -> None:
    signed_in(role)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
    page = client.get("/admin/operations/").text
    assert 'href="/admin/operations/">Operations</a>' in page
    assert "cofre backup restore" in page  # restore stays on the command line
    manage = "Run backup now" in page
    assert manage == (role == "admin")


def test_predictor_key_and_anonymous_are_refused(
    client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    for path in (*PAGES, "/admin/operations/backups/run"):
        assert client.get(path).status_code == 303  # to the login page
        assert client.get(path, headers=api_key("predictor")).status_code == 403


@pytest.mark.parametrize("role", ["publisher", "auditor"])
def test_readers_may_not_run_or_verify(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container, role: str
) -> None:
    csrf = signed_in(role)
    assert client.get("/admin/operations/backups/run").status_code == 403
    assert client.post("/admin/operations/backups", data={"csrf_token": csrf}).status_code == 403
    verify = "/admin/operations/backups/20260101T020000Z-a1b2c3/verify"
    assert client.post(verify, data={"csrf_token": csrf}).status_code == 403
    assert cofre.backups.entries() == []
    assert _events(cofre, "backup.created") == []


def test_run_backup_without_csrf_token_is_refused(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    signed_in("admin")
    assert client.post("/admin/operations/backups").status_code == 403
    assert client.post("/admin/operations/backups", data={"csrf_token": "x"}).status_code == 403
    assert cofre.backups.entries() == []


def test_run_backup_through_the_confirmation_then_verify(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    csrf = signed_in("admin")
    confirm = client.get("/admin/operations/backups/run").text
    assert "Yes, back up now" in confirm and 'action="/admin/operations/backups"' in confirm
    response = client.post("/admin/operations/backups", data={"csrf_token": csrf})
    assert response.status_code == 303
    [entry] = cofre.backups.entries()
    assert entry.verified and entry.id in response.headers["Location"]
    [created] = _events(cofre, "backup.created")
    assert created.details["id"] == entry.id and created.actor_type == "user"

    page = client.get(response.headers["Location"]).text
    assert "The backup was written and verified." in page
    row = page.split(f'id="backup-{entry.id}"', 1)[1].split("</tr>", 1)[0]
    assert ">yes<" in row and f"{entry.size:,} bytes" in row
    assert f"1 to {created.details['audit_seq']}" in row and "no mirror configured" in row

    verify = client.post(f"/admin/operations/backups/{entry.id}/verify", data={"csrf_token": csrf})
    assert verify.status_code == 303
    assert [e.details["id"] for e in _events(cofre, "backup.verified")] == [entry.id, entry.id]
    bad_id = client.post("/admin/operations/backups/not-an-id/verify", data={"csrf_token": csrf})
    assert bad_id.status_code == 422


def test_a_damaged_backup_fails_verification_and_says_so(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    csrf = signed_in("admin")
    client.post("/admin/operations/backups", data={"csrf_token": csrf})
    [entry] = cofre.backups.entries()
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.path.write_bytes(bytes(data))
    response = client.post(
        f"/admin/operations/backups/{entry.id}/verify", data={"csrf_token": csrf}
    )
    assert response.status_code == 500 and "integrity" in response.text.lower()
    page = client.get("/admin/operations/").text
    row = page.split(f'id="backup-{entry.id}"', 1)[1].split("</tr>", 1)[0]
    assert "FAILED" in row


def test_schedule_shows_cron_and_next_run(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    signed_in("auditor")
    page = client.get("/admin/operations/").text
    schedule = cofre.settings.backup_schedule
    row = page.split('id="job-backup"', 1)[1].split("</tr>", 1)[0]
    assert f"<code>{schedule}</code>" in row
    assert "UTC+00:00" in row.split('class="next-run"', 1)[1]


def test_job_history_is_paginated_newest_first(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    signed_in("publisher")
    with cofre.write() as session:
        for number in range(30):
            run = cofre.jobs.open(session, "backup", "test:1", utcnow() - timedelta(hours=number))
            cofre.jobs.close(session, run.id, RunEnd("ok", f"message-{number:02d}", 2))
        run = cofre.jobs.open(session, "restore-drill", "test:1")
        cofre.jobs.close(session, run.id, RunEnd("failed", "<b>no backup</b>", 3))
    first = client.get("/admin/operations/").text.split('id="history"', 1)[1]
    assert "31 runs · page 1 of 2" in first and "Older" in first
    assert first.index("&lt;b&gt;no backup&lt;/b&gt;") < first.index("message-29")
    assert "by hand" in first and "<b>no backup</b>" not in first
    assert "message-05" not in first
    second = client.get("/admin/operations/?page=2").text.split('id="history"', 1)[1]
    assert "page 2 of 2" in second and "message-00" in second and "message-29" not in second


def test_retraining_plans_and_runs_are_listed(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    signed_in("auditor")
    now = utcnow()
    with cofre.write() as session:
        plan = RetrainingPlan(
            model_name="credit/score",
            source_kind="file",
            source="loans.csv",
            target="default",
            schedule="0 3 * * 1",
            metric="roc_auc",
            min_improvement=0.01,
            holdout=0.25,
            created_by="publisher",
            created_at=now,
        )
        session.add(plan)
        session.flush()
        session.add(
            RetrainingRun(
                plan_id=plan.id,
                started_at=now,
                finished_at=now,
                source="loans.csv",
                data_sha256="ab" * 32,
                rows=1234,
                champion_version=1,
                champion_metric=0.81234,
                candidate_metric=0.80111,
                decision="rejected",
                reason="the candidate is not better by 0.01",
            )
        )
    page = client.get("/admin/operations/retraining").text
    assert "credit/score" in page and "<code>0 3 * * 1</code>" in page
    assert "abababababababab" in page and "1234" in page
    assert "v1: 0.8123" in page and "0.8011" in page
    assert "rejected" in page and "the candidate is not better by 0.01" in page
    assert "<form" not in page.split("<main>", 1)[1]  # read-only
    overview = client.get("/admin/operations/").text
    assert 'id="job-retrain:' in overview  # an enabled plan is a scheduled job
