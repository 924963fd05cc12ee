"""A version's lifecycle facts on SQLite and PostgreSQL: what publish records, the
changelog's baseline, and the load refusal under another scikit-learn minor version."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.errors import InvalidInput, Unverified
from governance.provenance.service import Origin
from governance.registry import lifecycle
from governance.registry.records import ModelVersion
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import (
    CARD,
    COLOUR_FEATURES,
    colour_classifier,
    iris_classifier,
    iris_classifier_v2,
    unnamed_regressor,
)
from tests.support.publishing import publish

RUNNING = sklearn.__version__
MAJOR, MINOR = (int(p) for p in RUNNING.split(".")[:2])


def test_json_safe_keeps_values_and_names_objects() -> None:
    value = {
        "a": np.float64(0.5),
        "b": (1, np.int64(2)),
        "c": float("nan"),
        "d": LogisticRegression(),
        "e": np.log1p,
        "f": np.array([1.0, 2.0]),
        3: None,
    }
    assert lifecycle.json_safe(value) == {
        "a": 0.5,
        "b": [1, 2],
        "c": "nan",
        "d": "sklearn.linear_model._logistic.LogisticRegression",
        "e": "numpy.log1p",
        "f": [1.0, 2.0],
        "3": None,
    }


def test_requirements_are_pinned_lines_with_normal_names() -> None:
    text = "# freeze\n\nScikit_Learn==1.5.2\nnumpy[extra]==2.1.0 ; python_version>'3'\n-e .\n"
    assert lifecycle.parse_requirements(text) == {"scikit-learn": "1.5.2", "numpy": "2.1.0"}
    with pytest.raises(InvalidInput, match="line 1 is not NAME==VERSION"):
        lifecycle.parse_requirements("pandas~=2.0\n")


@pytest.mark.parametrize(
    ("recorded", "refused"),
    [
        (RUNNING, False),
        (f"{MAJOR}.{MINOR}.99", False),  # a patch release apart: same minor version
        (f"{MAJOR}.{MINOR + 1}.0", True),
        ("0.24.2", True),
        (None, False),  # not recorded: nothing to compare
    ],
)
def test_only_another_minor_version_is_refused(
    cofre: Container, recorded: str | None, refused: bool
) -> None:
    publish(cofre, "iris")
    with cofre.write() as session:
        session.scalars(select(ModelVersion)).one().sklearn_version = recorded
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        assert (cofre.registry.load_refusal(version) is not None) is refused
        assert [v.version for v in cofre.registry.unverified(session)] == ([1] if refused else [])


def test_an_unverified_version_loads_only_once_verified(cofre: Container) -> None:
    publish(cofre, "iris")
    with cofre.write() as session:
        session.scalars(select(ModelVersion)).one().sklearn_version = "0.24.2"
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        with pytest.raises(Unverified) as refused:
            cofre.registry.load_estimator(version)
        check = cofre.registry.check_version(session, SYSTEM, "iris", 1)
    assert "trained with scikit-learn 0.24.2" in refused.value.detail
    assert check.passed and check.sklearn_version == RUNNING
    with cofre.write() as session:
        row = cofre.registry.record_verification(session, SYSTEM, check)
        assert row is not None and row.sklearn_version == RUNNING
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        assert cofre.registry.load_estimator(version).predict is not None
        assert cofre.registry.unverified(session) == []


def _publish(cofre: Container, artifact: bytes, data_sha: str | None = None) -> ModelVersion:
    origin = Origin("file", "m.skops", training_data_sha256=data_sha) if data_sha else None
    request = PublishRequest(
        name="iris", artifact=artifact, card=CARD, origin=origin, allow_duplicate=True
    )
    with cofre.write() as session:
        return cofre.registry.publish(session, SYSTEM, request)


def test_the_changelog_is_against_production_else_the_latest(cofre: Container) -> None:
    first = _publish(cofre, iris_classifier(), "a" * 64)
    assert first.facts is not None and first.facts.changelog is None
    second = _publish(cofre, iris_classifier_v2(), "b" * 64)
    assert second.facts is not None and second.facts.compared_with == 1
    with cofre.write() as session:
        cofre.registry.set_alias(session, SYSTEM, "iris", 2, "production")
    third = _publish(cofre, iris_classifier(), "b" * 64)
    assert third.facts is not None and third.facts.compared_with == 2
    changes = third.facts.changelog
    assert changes is not None
    assert changes["params_changed"] == [{"name": "C", "from": 0.1, "to": 1.0}]
    assert changes["training_data_changed"] is False
    assert second.facts.changelog is not None
    assert second.facts.changelog["training_data_changed"] is True
    with cofre.read() as session:
        diff = cofre.registry.diff(session, SYSTEM, "iris", 1, 3)
    assert diff["params_changed"] == [] and diff["training_data_changed"] is True


def test_the_published_audit_event_names_what_changed(cofre: Container) -> None:
    from governance.audit.records import AuditRecord

    _publish(cofre, iris_classifier())
    _publish(cofre, iris_classifier_v2())
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == "model.published")
        details = [e.details or {} for e in session.scalars(stmt.order_by(AuditRecord.seq))]
    assert details[0]["changes"] is None
    assert details[1]["changes"]["params_changed"] == ["C"]
    assert details[1]["changes"]["from_version"] == 1


def test_a_reference_sample_is_kept_where_rows_can_be_generated(cofre: Container) -> None:
    regressor = publish(cofre, "reg", unnamed_regressor())
    assert regressor.facts is not None and regressor.facts.sample is not None
    sample = regressor.facts.sample
    assert len(sample["rows"]) == len(sample["outputs"]) == 100 and sample["proba"] is None
    assert all(len(row) == 3 for row in sample["rows"])
    colours = publish(cofre, "colours", colour_classifier(), features=COLOUR_FEATURES)
    assert colours.facts is not None and colours.facts.sample is None  # text: no range
    with cofre.read() as session:
        check = cofre.registry.check_version(session, SYSTEM, "reg", 1)
    assert check.passed and check.comparison["against"] == "sample"
    assert check.comparison["max_relative_diff"] == 0.0
