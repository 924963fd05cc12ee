"""Erasure by crypto-shredding, on SQLite and PostgreSQL: the rows become unreadable,
the chain still verifies, the erasure is in the chain and the journal, the same person
can be scored again, a hold blocks it, an unknown subject is refused; all audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditDataKey, AuditRecord
from governance.errors import Conflict, NotFound
from governance.subjects.caller import Caller
from server.container import Container
from tests.support.clock import install
from tests.support.scoring import IRIS_ROW, rows_of, score

CALLER = Caller(SYSTEM, "cli")


def _kinds(cofre: Container, kind: str) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == kind).order_by(AuditRecord.seq)
        return list(session.scalars(stmt))


def _verifies(cofre: Container) -> bool:
    with cofre.read() as session:
        return cofre.audit.verify(session).ok


def test_erasure_shreds_the_subjects_rows_only_and_the_chain_verifies(iris: Container) -> None:
    both = score(iris, ["ana", "bruno"])
    only_ana = score(iris, ["ana"])
    result = iris.subjects.erase(CALLER, "ana", "request 2026/17")
    assert result.keys_destroyed == 1 and not result.already_erased
    assert rows_of(iris, both)[0] == {"erased": True}
    assert rows_of(iris, both)[1]["input"] == IRIS_ROW  # bruno's row, same request
    assert rows_of(iris, only_ana) == [{"erased": True}]
    assert _verifies(iris)
    erased = _kinds(iris, "subject.erased")[-1]
    assert erased.seq == result.seq and erased.outcome == "ok"
    assert erased.details == {
        "pseudonym": iris.audit.pseudonym("ana"),
        "keys_destroyed": 1,
        "reason": "request 2026/17",
    }
    assert "ana" not in json.dumps(erased.details).replace(erased.details["reason"], "")
    journal = iris.subjects.journal.entries()
    assert [(e.pseudonym, e.seq) for e in journal] == [(iris.audit.pseudonym("ana"), result.seq)]
    assert (iris.settings.key_dir / "erasures.json").stat().st_mode & 0o777 == 0o600


def test_the_same_person_is_scored_again_under_a_new_key(iris: Container) -> None:
    before = score(iris, ["ana"])
    iris.subjects.erase(CALLER, "ana", "request 1")
    after = score(iris, ["ana"])
    assert rows_of(iris, after)[0]["input"] == IRIS_ROW
    assert rows_of(iris, before) == [{"erased": True}]
    with iris.read() as session:
        keys = session.scalars(
            select(AuditDataKey).where(AuditDataKey.pseudonym == iris.audit.pseudonym("ana"))
        ).all()
    assert sorted(k.wrapped is None for k in keys) == [False, True]
    again = iris.subjects.erase(CALLER, "ana", "request 2")
    assert again.keys_destroyed == 1
    assert rows_of(iris, after) == [{"erased": True}]
    assert _verifies(iris)


def test_erasure_is_idempotent(iris: Container) -> None:
    score(iris, ["ana"])
    iris.subjects.erase(CALLER, "ana", "first")
    second = iris.subjects.erase(CALLER, "ana", "second")
    assert second.already_erased and second.keys_destroyed == 0
    assert [r.outcome for r in _kinds(iris, "subject.erased")] == ["ok", "ok"]
    assert len(iris.subjects.journal.entries()) == 1


def test_an_unknown_subject_is_refused_and_the_refusal_recorded(iris: Container) -> None:
    with pytest.raises(NotFound):
        iris.subjects.erase(CALLER, "nobody", "request 3")
    refused = _kinds(iris, "subject.erased")[-1]
    assert refused.outcome == "rejected"
    assert refused.details is not None and refused.details["pseudonym"] == iris.audit.pseudonym(
        "nobody"
    )


def test_a_legal_hold_blocks_erasure_until_released(iris: Container) -> None:
    request_id = score(iris, ["ana"])
    iris.subjects.hold(CALLER, "ana", "case 44/2026")
    with pytest.raises(Conflict, match="legal hold"):
        iris.subjects.erase(CALLER, "ana", "request 4")
    assert rows_of(iris, request_id)[0]["input"] == IRIS_ROW
    assert _kinds(iris, "subject.erased")[-1].outcome == "denied"
    with pytest.raises(Conflict, match="already under legal hold"):
        iris.subjects.hold(CALLER, "ana", "again")
    iris.subjects.release(CALLER, "ana")
    with pytest.raises(Conflict, match="not under legal hold"):
        iris.subjects.release(CALLER, "ana")
    iris.subjects.erase(CALLER, "ana", "request 4")
    assert rows_of(iris, request_id) == [{"erased": True}]
    kinds = [r.kind for r in _kinds(iris, "subject.held") + _kinds(iris, "subject.released")]
    assert kinds == ["subject.held", "subject.held", "subject.released", "subject.released"]
    with iris.read() as session:
        status = iris.subjects.status(session, iris.audit.pseudonym("ana"))
    assert not status.held and status.destroyed_keys == 1 and len(status.holds) == 1
    assert [e.kind for e in status.events][-1] == "subject.erased"


def test_keys_are_scoped_by_subject_version_and_day(
    iris: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = install(monkeypatch)
    from tests.support.publishing import publish

    publish(iris, "iris", allow_duplicate=True)  # version 2
    score(iris, ["ana", "ana", "bruno"])
    score(iris, ["ana"])
    score(iris, ["ana"], version=2)
    score(iris, [None, None])
    clock.advance(days=1)
    score(iris, ["ana"])
    with iris.read() as session:
        pseudonym = iris.audit.pseudonym("ana")
        count = session.scalar(
            select(func.count())
            .select_from(AuditDataKey)
            .where(AuditDataKey.pseudonym == pseudonym)
        )
        anonymous = session.scalar(
            select(func.count()).select_from(AuditDataKey).where(AuditDataKey.pseudonym.is_(None))
        )
    assert count == 3  # day 1 version 1, day 1 version 2, day 2 version 1
    assert anonymous == 1  # one per-request key for the anonymous rows
