"""Audit pages: search filters, subject search by pseudonym, audited detail views,
exports (JSON and CSV), and the Verify chain action."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent, PersonalRow
from server.container import Container

CALLER = Actor(type="key", id="99", role="predictor", name="key:test")


@pytest.fixture
def predictions(cofre: Container) -> dict[str, int]:
    """Three prediction records; returns request id -> seq."""
    seqs = {}
    with cofre.write() as session:
        for request_id, people, outcome in (
            ("req-a", [("alice", 1)], "ok"),
            ("req-b", [("bob", 2), ("alice", 3)], "ok"),
            ("req-c", [("=cmd|' /C calc'!A0", 4)], "error"),
        ):
            record = cofre.audit.append(
                session,
                AuditEvent(
                    kind="prediction",
                    actor=CALLER,
                    outcome=outcome,
                    status=200,
                    endpoint="native",
                    request_id=request_id,
                    model_name="credit/score",
                    model_version=2,
                    details={"rows": len(people), "latency_ms": 5},
                    rows=[PersonalRow(s, {"x": x}) for s, x in people],
                ),
            )
            seqs[request_id] = record.seq
    return seqs


def _count(cofre: Container, kind: str) -> int:
    with cofre.read() as session:
        return len(list(session.scalars(select(AuditRecord).where(AuditRecord.kind == kind))))


def test_search_by_request_id_model_and_outcome(
    client: FlaskClient, signed_in: Callable[[str], str], predictions: dict[str, int]
) -> None:
    signed_in("auditor")
    page = client.get("/admin/audit/?request_id=req-b").text
    assert "1 record " in page and "req-b" in page and "req-a" not in page
    page = client.get("/admin/audit/?model=credit/score&version=2&outcome=error").text
    assert "req-c" in page and "req-a" not in page
    assert "3 records" in client.get("/admin/audit/?kind=prediction").text


def test_search_by_subject_uses_the_pseudonym(
    client: FlaskClient,
    signed_in: Callable[[str], str],
    predictions: dict[str, int],
    cofre: Container,
) -> None:
    csrf = signed_in("auditor")
    response = client.post("/admin/audit/search", data={"csrf_token": csrf, "subject_id": "alice"})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert "alice" not in location and cofre.audit.pseudonym("alice") in location
    page = client.get(location).text
    assert "2 records" in page and "req-a" in page and "req-b" in page and "req-c" not in page


def test_search_by_caller_and_time_range(
    client: FlaskClient, signed_in: Callable[[str], str], predictions: dict[str, int]
) -> None:
    signed_in("auditor")
    assert "3 records" in client.get("/admin/audit/?caller=99&kind=prediction").text
    assert "0 records" in client.get("/admin/audit/?since=2999-01-01T00:00").text
    assert "3 records" in client.get("/admin/audit/?until=2999-01-01T00:00&kind=prediction").text
    assert client.get("/admin/audit/?since=yesterday").status_code == 422


def test_search_pages_through_results(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    signed_in("auditor")
    with cofre.write() as session:
        for _ in range(60):
            cofre.audit.append(session, AuditEvent(kind="test.filler", actor=CALLER, details={}))
    first = client.get("/admin/audit/?kind=test.filler").text
    assert "page 1 of 2" in first and "Older" in first
    second = client.get("/admin/audit/?kind=test.filler&page=2").text
    assert "page 2 of 2" in second and "Newer" in second


def test_detail_shows_decrypted_rows_and_is_audited(
    client: FlaskClient,
    signed_in: Callable[[str], str],
    predictions: dict[str, int],
    cofre: Container,
) -> None:
    signed_in("auditor")
    page = client.get(f"/admin/audit/records/{predictions['req-b']}").text
    assert "&#34;x&#34;: 2" in page or '"x": 2' in page
    assert "credit/score version 2" in page
    assert _count(cofre, "audit.viewed") == 1
    assert client.get("/admin/audit/records/9999").status_code == 404


def test_subject_export_holds_only_that_subjects_rows_and_is_audited(
    client: FlaskClient,
    signed_in: Callable[[str], str],
    predictions: dict[str, int],
    cofre: Container,
) -> None:
    csrf = signed_in("auditor")
    response = client.post(
        "/admin/audit/export", data={"csrf_token": csrf, "subject_id": "alice", "format": "json"}
    )
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    records = json.loads(response.text)["records"]
    assert [r["request_id"] for r in records] == ["req-a", "req-b"]
    assert [row["data"]["x"] for r in records for row in r["rows"]] == [1, 3]
    assert _count(cofre, "audit.exported") == 1


def test_csv_export_defuses_formulas(
    client: FlaskClient, signed_in: Callable[[str], str], predictions: dict[str, int]
) -> None:
    csrf = signed_in("auditor")
    response = client.post(
        "/admin/audit/export", data={"csrf_token": csrf, "request_id": "req-c", "format": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1 and rows[0]["request_id"] == "req-c"
    assert json.loads(rows[0]["data"]) == {"x": 4}
    assert not any(value.startswith("=") for value in rows[0].values())


def test_verify_shows_ok_then_the_tampered_record(
    client: FlaskClient,
    signed_in: Callable[[str], str],
    predictions: dict[str, int],
    cofre: Container,
) -> None:
    csrf = signed_in("auditor")
    client.post("/admin/audit/verify", data={"csrf_token": csrf})
    page = client.get("/admin/audit/verify").text
    assert "<h2>OK</h2>" in page
    seq = predictions["req-b"]
    with cofre.write() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == seq).values(status=201))
    client.post("/admin/audit/verify", data={"csrf_token": csrf})
    page = client.get("/admin/audit/verify").text
    assert f'<span id="bad-seq">{seq}</span>' in page
    assert "the record was edited" in page
    assert "FAILED" in client.get("/admin/").text


def test_a_model_scoped_auditor_reads_only_its_models_records(
    client: FlaskClient,
    predictions: dict[str, int],
    cofre: Container,
    api_key: Callable[..., dict[str, str]],
) -> None:
    """Issue 14.3: an auditor key limited with --model read every model's records."""
    with cofre.write() as session:
        mine = cofre.audit.append(
            session,
            AuditEvent(
                kind="prediction",
                actor=CALLER,
                status=200,
                endpoint="native",
                request_id="req-mine",
                model_name="mine",
                model_version=1,
                details={"rows": 1, "latency_ms": 5},
                rows=[PersonalRow("alice", {"x": 9})],
            ),
        )
    scoped = api_key("auditor", models=["mine"])
    page = client.get("/admin/audit/?kind=prediction", headers=scoped).text
    assert "1 record " in page and "req-mine" in page and "req-a" not in page
    assert "0 records" in client.get("/admin/audit/?request_id=req-a", headers=scoped).text
    assert client.get(f"/admin/audit/records/{mine.seq}", headers=scoped).status_code == 200
    other = client.get(f"/admin/audit/records/{predictions['req-a']}", headers=scoped)
    assert other.status_code == 403
    exported = client.post(
        "/admin/audit/export", data={"subject_id": "alice", "format": "json"}, headers=scoped
    )
    assert [r["request_id"] for r in json.loads(exported.text)["records"]] == ["req-mine"]
