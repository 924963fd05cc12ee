"""The feedback reader monitoring calls, on SQLite and PostgreSQL: rows selected by when
they were served, one query however many labels, each data key unwrapped once, and
unreadable labels left out rather than raised."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from governance.accounts.actor import SYSTEM
from governance.monitoring.feedback import (
    GivenLabel,
    Recorded,
    Submission,
    _ground_truth,
    _Refused,
)
from governance.monitoring.records import FeedbackLabel
from governance.registry.records import ModelVersion
from governance.subjects.caller import Caller
from server.container import Container
from tests.support.clock import FakeClock, install
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish
from tests.support.scoring import score

CALLER = Caller(SYSTEM, "cli")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    installed = install(monkeypatch)
    monkeypatch.setattr("governance.monitoring.feedback.utcnow", installed)
    return installed


@pytest.fixture
def iris(cofre: Container) -> Container:
    publish(cofre, "iris", aliases=["production"])
    publish(cofre, "iris", iris_classifier_v2())
    return cofre


def _label(
    cofre: Container, request_id: str, labels: list[Any], every_row: bool = True
) -> Recorded:
    given = tuple(
        GivenLabel(i, label, None, f"ground_truth[{i}]") for i, label in enumerate(labels)
    )
    with cofre.write() as session:
        return cofre.feedback.record(session, CALLER, Submission(request_id, given, every_row))


def test_labels_are_selected_by_version_and_when_the_row_was_served(
    iris: Container, clock: FakeClock
) -> None:
    start = clock.now
    early = score(iris, [None], version=1)
    clock.advance(hours=2)
    late = score(iris, ["ana"], version=1)
    other = score(iris, [None], version=2)
    clock.advance(hours=5)  # labels arrive later; the serving time is what counts
    for request_id in (early, late, other):
        _label(iris, request_id, [1])
    hour = timedelta(hours=1)
    with iris.read() as session:
        labels = iris.feedback.labels
        assert list(labels(session, "iris", 1, start, start + hour)) == [(early, 0)]
        assert list(labels(session, "iris", 1, start + 2 * hour, start + 3 * hour)) == [(late, 0)]
        assert labels(session, "iris", 1, start - hour, start) == {}  # `until` is excluded
        assert list(labels(session, "iris", 2, start, start + 3 * hour)) == [(other, 0)]
        assert labels(session, "other", 1, start, start + 3 * hour) == {}
        label = labels(session, "iris", 1, start, start + hour)[(early, 0)]
    assert (label.ground_truth, label.group, label.recorded_at) == (1, None, clock.now)


def test_one_query_and_one_unwrap_per_data_key(
    iris: Container, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = score(iris, [None] * 40)  # one sealed block under the day's anonymous key
    people = score(iris, ["ana", "bia", None, "ana"])  # keys: ana, bia, the anonymous one
    _label(iris, block, [i % 3 for i in range(40)])
    _label(iris, people, [0, 1, 2, 0])
    _label(iris, people, [2, 2, 2, 2])  # corrections: only the newest is opened
    unwrapped: list[str] = []
    real = iris.sealer.unwrap

    def counting(key_id: str, kek_id: str | None, wrapped: bytes | None) -> bytes | None:
        unwrapped.append(key_id)
        return real(key_id, kek_id, wrapped)

    monkeypatch.setattr(iris.sealer, "unwrap", counting)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(iris.engine, "before_cursor_execute", seen)
    try:
        with iris.read() as session:
            statements.clear()
            labels = iris.feedback.labels(
                session, "iris", 1, clock.now - timedelta(hours=1), clock.now + timedelta(hours=1)
            )
            selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    finally:
        event.remove(iris.engine, "before_cursor_execute", seen)
    assert len(labels) == 44
    assert [labels[(people, row)].ground_truth for row in range(4)] == [2, 2, 2, 2]
    assert len(selects) == 1
    assert len(unwrapped) == len(set(unwrapped)) == 3


def test_an_unreadable_label_is_left_out_and_the_rest_read(
    iris: Container, clock: FakeClock
) -> None:
    request_id = score(iris, ["ana", "bia"])
    _label(iris, request_id, [0, 1])
    with iris.write() as session:
        damaged = session.scalars(select(FeedbackLabel).where(FeedbackLabel.row == 0)).one()
        session.execute(
            update(FeedbackLabel)
            .where(FeedbackLabel.id == damaged.id)
            .values(sealed=damaged.sealed[:-1] + bytes([damaged.sealed[-1] ^ 1]))
        )
    hour = timedelta(hours=1)
    with iris.read() as session:
        labels = iris.feedback.labels(session, "iris", 1, clock.now - hour, clock.now + hour)
        assert list(labels) == [(request_id, 1)]
        found = iris.feedback.for_rows(session, [(request_id, 0), (request_id, 1)])
    assert found[(request_id, 0)][0]["erased"] and not found[(request_id, 1)][0]["erased"]


def test_retention_makes_the_labels_of_expired_rows_unreadable(
    iris: Container, clock: FakeClock
) -> None:
    request_id = score(iris, ["ana", None])
    _label(iris, request_id, [0, 1])
    served = clock.now
    clock.advance(days=367)
    with iris.write() as session:
        assert iris.retention.run(session, SYSTEM).shredded == 2
    with iris.read() as session:
        labels = iris.feedback.labels(
            session, "iris", 1, served - timedelta(hours=1), served + timedelta(hours=1)
        )
    assert labels == {}


@pytest.mark.parametrize(
    ("classes", "given", "stored"),
    [
        ([0, 1, 2], 1, 1),
        ([0, 1, 2], 1.0, 1),
        ([0, 1, 2], " 2", 2),  # a CSV cell
        ([0.0, 1.0], "1", 1.0),  # a target pandas read as floats
        ([0.0, 1.0], 0, 0.0),
        (["no", "yes"], "yes", "yes"),
        ([False, True], "true", True),
        ([False, True], True, True),
        (None, 2.5, 2.5),
        (None, "-3", -3.0),
        (None, 7, 7),
    ],
)
def test_a_label_is_stored_as_the_class_it_names(classes: Any, given: Any, stored: Any) -> None:
    found = _ground_truth(ModelVersion(classes=classes), given)
    assert found == stored and type(found) is type(stored)


@pytest.mark.parametrize(
    ("classes", "given"),
    [
        ([0, 1, 2], 3),
        ([0, 1, 2], True),  # a bool is not the class 1
        ([0, 1, 2], None),
        ([0, 1, 2], "one"),
        ([0, 1, 2], [1]),
        (["no", "yes"], "Yes"),
        ([False, True], 1),
        (None, True),
        (None, "nan"),
        (None, "inf"),
        (None, float("inf")),
        (None, None),
        (None, "1,5"),
    ],
)
def test_a_label_outside_the_classes_is_refused(classes: Any, given: Any) -> None:
    with pytest.raises(_Refused):
        _ground_truth(ModelVersion(classes=classes), given)
