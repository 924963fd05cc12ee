"""Refused attempts on every route are audit events, not only on prediction routes
(subject-rights issue): what was refused, whom, and what they got."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from governance.audit.records import AuditRecord
from server.container import Container
from server.errors import REFUSED

Headers = dict[str, str]


def _refusals(cofre: Container) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == REFUSED).order_by(AuditRecord.seq)
        return list(session.scalars(stmt))


def test_a_predictor_reading_the_audit_log_is_recorded(
    client: FlaskClient, cofre: Container, api_key: Callable[..., Headers]
) -> None:
    answer = client.get("/api/v1/audit/head", headers=api_key("predictor"))
    assert answer.status_code == 403
    (record,) = _refusals(cofre)
    assert (record.outcome, record.status, record.actor_type, record.endpoint) == (
        "denied",
        403,
        "key",
        "api",
    )
    assert record.request_id == answer.json["request_id"]
    assert record.details == {"reason": "forbidden", "method": "GET", "path": "/api/v1/audit/head"}


def test_a_refused_pickle_upload_is_recorded_and_its_bytes_are_not(
    client: FlaskClient, cofre: Container, api_key: Callable[..., Headers]
) -> None:
    answer = client.post(
        "/api/v1/models/iris/versions",
        data={
            "file": (io.BytesIO(pickle.dumps({"a": 1})), "model.pkl"),
            "purpose": "p",
            "legal_basis": "b",
        },
        headers=api_key("publisher"),
    )
    assert answer.status_code == 422
    (record,) = _refusals(cofre)
    assert (record.outcome, record.status, record.model_name) == ("rejected", 422, "iris")
    assert record.details["reason"] == "untrusted-artifact" and record.payload is None


def test_anonymous_calls_and_page_visits_are_recorded(
    client: FlaskClient, cofre: Container
) -> None:
    assert client.get("/api/v1/models").status_code == 401
    assert client.get("/admin/").status_code == 303  # to the login form
    assert client.get("/no/such/route").status_code == 404  # routing noise: not recorded
    records = _refusals(cofre)
    assert [(r.status, r.endpoint, r.actor_type) for r in records] == [
        (401, "api", "anonymous"),
        (303, "admin", "anonymous"),
    ]
    with cofre.read() as session:
        assert cofre.audit.verify(session).ok
