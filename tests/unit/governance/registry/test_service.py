"""Registry use cases on SQLite and PostgreSQL: versions, schema, card, aliases, rollback."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import sklearn
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from governance.accounts.actor import SYSTEM
from governance.errors import Conflict, InvalidInput, NotFound, UntrustedArtifact
from governance.registry.service import ModelCard, PublishRequest
from server.container import Container
from tests.support.artifacts import names as artifact_names
from tests.support.models import (
    CARD,
    cancer_pipeline,
    iris_classifier,
    iris_classifier_v2,
    unnamed_regressor,
)
from tests.support.publishing import publish

IRIS_NAMES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


def test_a_version_records_everything_about_the_artifact(cofre: Container) -> None:
    version = publish(cofre, "iris")
    assert version.version == 1
    assert version.sha256 == hashlib.sha256(iris_classifier()).hexdigest()
    assert version.size == len(iris_classifier())
    assert version.features == [{"name": n, "dtype": "float64"} for n in IRIS_NAMES]
    assert version.named_features is True
    assert version.has_proba is True
    assert version.classes == [0, 1, 2]
    assert version.sklearn_version == sklearn.__version__
    assert version.published_by == "cofre"
    assert version.published_at is not None and version.published_at.tzinfo is not None
    assert (version.purpose, version.legal_basis) == (CARD.purpose, CARD.legal_basis)
    assert (version.decision_mode, version.owner) == ("automated", "tests")


def test_versions_are_sequential_per_model(cofre: Container) -> None:
    numbers = [publish(cofre, "iris", allow_duplicate=True).version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert publish(cofre, "other", iris_classifier_v2()).version == 1
    with cofre.read() as session:
        model = cofre.registry.model(session, "iris")
        assert [v.version for v in model.versions] == [1, 2, 3]


def test_unnamed_features_are_numbered(cofre: Container) -> None:
    version = publish(cofre, "reg", unnamed_regressor())
    assert version.features == [{"name": f"f{i}", "dtype": "float64"} for i in range(3)]
    assert version.named_features is False
    assert version.has_proba is False and version.classes is None


def test_a_declared_schema_is_kept(cofre: Container) -> None:
    declared = [
        {"name": "age", "dtype": "int64"},
        {"name": "income", "dtype": "float64"},
        {"name": "member", "dtype": "bool"},
    ]
    version = publish(cofre, "reg", unnamed_regressor(), features=declared)
    assert version.features == declared


@pytest.mark.parametrize(
    ("declared", "field"),
    [
        ([{"name": "a", "dtype": "float64"}], "features"),  # wrong count
        (
            [{"name": "a", "dtype": "complex"}]
            + [{"name": f"b{i}", "dtype": "float64"} for i in range(2)],
            "features[0]",
        ),
        ([{"name": "a", "dtype": "float64"}] * 3, "features"),  # duplicate names
        ([{"dtype": "float64"}] * 3, "features[0]"),  # no name
    ],
)
def test_a_declared_schema_that_does_not_fit_is_refused(
    cofre: Container, declared: list[dict[str, str]], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        publish(cofre, "reg", unnamed_regressor(), features=declared)
    assert field in [e.field for e in refused.value.errors]
    with cofre.read() as session:
        assert cofre.registry.models(session, SYSTEM) == []


def test_declared_names_must_match_feature_names_in(cofre: Container) -> None:
    declared = [{"name": n.upper(), "dtype": "float64"} for n in IRIS_NAMES]
    with pytest.raises(InvalidInput) as refused:
        publish(cofre, "iris", features=declared)
    assert "feature_names_in_" in refused.value.errors[0].message


@pytest.mark.parametrize(
    ("card", "fields"),
    [
        (ModelCard(purpose="", legal_basis=""), {"purpose", "legal_basis"}),
        (ModelCard(purpose="  ", legal_basis="consent"), {"purpose"}),
        (ModelCard(purpose="p", legal_basis="l", decision_mode="whatever"), {"decision_mode"}),
    ],
)
def test_the_model_card_needs_purpose_and_legal_basis(
    cofre: Container, card: ModelCard, fields: set[str]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        publish(cofre, "iris", card=card)
    assert {e.field for e in refused.value.errors} == fields


@pytest.mark.parametrize("name", ["", "a/b", "x@prod", "x:1", " iris", "-x", "a" * 129])
def test_model_names_are_one_unambiguous_segment(cofre: Container, name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid model name"):
        publish(cofre, name)


def test_a_refused_artifact_leaves_nothing_behind(cofre: Container) -> None:
    with pytest.raises(UntrustedArtifact):
        publish(cofre, "iris", b"\x80\x04not really")
    assert _artifact_files(cofre) == []
    with cofre.read() as session:
        assert cofre.audit.count(session) == 1  # only the first admin's creation


def _artifact_files(cofre: Container) -> list[str]:
    """What the artifact place holds (files, or rows on PostgreSQL)."""
    directory = cofre.settings.artifact_dir
    files = sorted(p.name for p in directory.iterdir()) if directory.exists() else []
    return files + artifact_names(cofre) if cofre.settings.artifact_store == "database" else files


def test_a_publish_rolled_back_later_leaves_no_artifact_file(cofre: Container) -> None:
    """The artifact file (and the compiled model's) is written before the version row
    commits; when the unit of work fails after publishing (a later step, or the commit
    itself), the files go too."""
    kept = publish(cofre, "iris")
    assert kept.compilation is not None and kept.compilation.artifact_file is not None
    kept_files = sorted([kept.artifact_file, kept.compilation.artifact_file])
    request = PublishRequest("iris", iris_classifier(), CARD, allow_duplicate=True)
    with pytest.raises(RuntimeError, match="a later step"), cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)
        assert len(_artifact_files(cofre)) == 4
        raise RuntimeError("a later step failed")
    assert _artifact_files(cofre) == kept_files

    def failing_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Session, "commit", failing_commit)
        with pytest.raises(OperationalError), cofre.write() as session:
            cofre.registry.publish(session, SYSTEM, request)
    assert _artifact_files(cofre) == kept_files
    with cofre.read() as session:
        assert [v.version for v in cofre.registry.model(session, "iris").versions] == [1]


def test_a_published_estimator_loads_and_predicts(cofre: Container) -> None:
    version = publish(cofre, "cancer", cancer_pipeline())
    estimator = cofre.registry.load_estimator(version)
    from sklearn.datasets import load_breast_cancer

    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    assert np.mean(estimator.predict(features) == target) > 0.9


def test_aliases_resolve_and_move(cofre: Container) -> None:
    publish(cofre, "iris", aliases=["production"])
    publish(cofre, "iris", iris_classifier_v2(), aliases=["staging"])
    with cofre.read() as session:
        assert cofre.registry.resolve(session, "iris").version == 1  # production by default
        assert cofre.registry.resolve(session, "iris", alias="staging").version == 2
        assert cofre.registry.resolve(session, "iris", version=2).version == 2
        with pytest.raises(NotFound, match="no alias 'canary'"):
            cofre.registry.resolve(session, "iris", alias="canary")
        with pytest.raises(NotFound, match="no version 9"):
            cofre.registry.resolve(session, "iris", version=9)
    with cofre.write() as session:
        cofre.registry.set_alias(session, _actor(), "iris", 2, "production")
    with cofre.read() as session:
        assert cofre.registry.resolve(session, "iris").version == 2


def test_aliases_need_an_existing_version_and_a_valid_name(cofre: Container) -> None:
    publish(cofre, "iris")
    with cofre.write() as session, pytest.raises(NotFound):
        cofre.registry.set_alias(session, _actor(), "iris", 5, "production")
    with cofre.write() as session, pytest.raises(InvalidInput, match="invalid alias"):
        cofre.registry.set_alias(session, _actor(), "iris", 1, "Prod uction")
    with cofre.write() as session, pytest.raises(NotFound, match="no model named 'nope'"):
        cofre.registry.set_alias(session, _actor(), "nope", 1, "production")


def test_rollback_walks_back_through_the_history(cofre: Container) -> None:
    for _ in range(4):
        publish(cofre, "iris", allow_duplicate=True)
    for version in (1, 2, 3, 4):
        _set(cofre, version)
    assert _rollback(cofre) == 3
    assert _rollback(cofre) == 2  # a stack: repeated rollbacks walk further back
    assert _rollback(cofre) == 1
    with cofre.write() as session, pytest.raises(Conflict, match="no earlier target"):
        cofre.registry.rollback(session, _actor(), "iris", "production")
    _set(cofre, 4)
    assert _rollback(cofre) == 1  # a new move pushes the target it replaced
    with cofre.read() as session:
        history = cofre.registry.alias_history(session, "iris")
        moves = [(h.action, h.from_version, h.to_version) for h in history]
    assert moves == [
        ("set", None, 1),
        ("set", 1, 2),
        ("set", 2, 3),
        ("set", 3, 4),
        ("rollback", 4, 3),
        ("rollback", 3, 2),
        ("rollback", 2, 1),
        ("set", 1, 4),
        ("rollback", 4, 1),
    ]


def test_rollback_of_an_unknown_alias(cofre: Container) -> None:
    publish(cofre, "iris")
    with cofre.write() as session, pytest.raises(NotFound, match="no alias 'canary'"):
        cofre.registry.rollback(session, _actor(), "iris", "canary")


def _actor():  # type: ignore[no-untyped-def]
    from governance.accounts.actor import cli_operator

    return cli_operator("tester")


def _set(cofre: Container, version: int) -> None:
    with cofre.write() as session:
        cofre.registry.set_alias(session, _actor(), "iris", version, "production")


def _rollback(cofre: Container) -> int:
    with cofre.write() as session:
        return cofre.registry.rollback(session, _actor(), "iris", "production").version


def test_a_model_scoped_actor_changes_only_its_models(cofre: Container) -> None:
    """Issue 14.1: the scope holds in the service, whatever door the call came by."""
    from governance.accounts.actor import Actor
    from governance.errors import PermissionDenied

    publish(cofre, "iris", aliases=["production"])
    publish(cofre, "other", iris_classifier_v2(), aliases=["production"])
    scoped = Actor(type="key", id="7", role="publisher", name="k", models=("iris",))
    other = PublishRequest(name="other", artifact=unnamed_regressor(), card=CARD)
    with cofre.write() as session:
        with pytest.raises(PermissionDenied):
            cofre.registry.publish(session, scoped, other)
        with pytest.raises(PermissionDenied):
            cofre.registry.set_alias(session, scoped, "other", 1, "staging")
        with pytest.raises(PermissionDenied):
            cofre.registry.rollback(session, scoped, "other", "production")
    with cofre.write() as session:
        mine = PublishRequest(name="iris", artifact=unnamed_regressor(), card=CARD)
        assert cofre.registry.publish(session, scoped, mine).version == 2
        cofre.registry.set_alias(session, scoped, "iris", 2, "staging")
    with cofre.read() as session:
        assert [v.version for v in cofre.registry.model(session, "other").versions] == [1]


def test_a_byte_identical_artifact_is_refused_naming_its_version(cofre: Container) -> None:
    """Issue 14.19: republishing the same bytes silently made a new version."""
    publish(cofre, "iris")
    publish(cofre, "iris", iris_classifier_v2())
    with pytest.raises(Conflict, match="version 1 of 'iris' is this very artifact"):
        publish(cofre, "iris")
    again = PublishRequest("iris", iris_classifier(), CARD, allow_duplicate=True)
    with cofre.write() as session:
        assert cofre.registry.publish(session, SYSTEM, again).version == 3
    assert publish(cofre, "other").version == 1  # another model may hold the same bytes
