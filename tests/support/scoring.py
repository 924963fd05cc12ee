"""Scoring through the real prediction core, for tests about what the log holds after."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from governance.accounts.actor import SYSTEM, Actor
from server.container import Container
from server.inference.predictor import Call, Decoded
from server.inference.table import Table

IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def score(
    cofre: Container,
    subject_ids: Sequence[str | None],
    name: str = "iris",
    version: int | None = None,
    rows: Sequence[dict[str, Any]] | None = None,
    actor: Actor = SYSTEM,
) -> str:
    """One request with one row per subject id; returns its request id."""
    request_id = uuid.uuid4().hex
    decoded = Decoded(
        table=Table(list(rows) if rows is not None else [IRIS_ROW] * len(subject_ids)),
        subject_ids=list(subject_ids),
        purpose="testing",
    )
    call = Call("native", name, request_id, version=None if version is None else str(version))
    cofre.predictor.predict(lambda: actor, call, lambda served: decoded)
    return request_id


def rows_of(cofre: Container, request_id: str) -> list[dict[str, Any]]:
    with cofre.read() as session:
        record = next(r for r in cofre.audit.by_request(session, SYSTEM, request_id) if r.payload)
        return cofre.audit.decrypt_payload(session, record)
