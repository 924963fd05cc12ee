"""Compiled inference in the registry: converted, proven equal, stored encrypted, or refused
with its reason."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pandas as pd
import pytest
import skops.io as sio
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LinearRegression, LogisticRegression
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.errors import InvalidInput
from governance.operations.rotation import rotate_master_key
from governance.registry import compiled
from governance.registry.records import ModelVersion
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.artifacts import names as artifact_names
from tests.support.artifacts import stored
from tests.support.models import (
    CARD,
    cancer_forest,
    cancer_pipeline,
    iris_classifier,
    iris_log_pipeline,
)
from tests.support.publishing import publish

CANCER, _ = load_breast_cancer(return_X_y=True, as_frame=True)


def _events(cofre: Container, kind: str) -> list[AuditRecord]:
    with cofre.read() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.kind == kind)))


def _publish(cofre: Container, name: str, artifact: bytes, runtime: str = "auto") -> ModelVersion:
    request = PublishRequest(name=name, artifact=artifact, card=CARD, runtime=runtime)
    with cofre.write() as session:
        return cofre.registry.publish(session, SYSTEM, request)


@pytest.mark.parametrize("artifact", [cancer_pipeline, cancer_forest], ids=["logistic", "forest"])
def test_breast_cancer_models_are_proven_and_compiled(
    cofre: Container, artifact: Callable[[], bytes]
) -> None:
    version = _publish(cofre, "cancer", artifact())
    row = version.compilation
    assert row is not None and version.runtime == "onnx" and row.reason == ""
    proof = row.proof or {}
    assert proof["passed"] and proof["rows"] == compiled.SAMPLE_ROWS
    assert proof["label_mismatches"] == 0 and proof["sample"] == "generated"
    assert 0 <= proof["max_proba_diff"] <= compiled.PROBA_TOLERANCE
    assert proof["onnxruntime"] != "absent" and proof["skl2onnx"] != "absent"
    # The stored model answers the real data as the estimator does.
    runner = compiled.CompiledEstimator(cofre.registry.load_compiled(version), version.classes)
    estimator = cofre.registry.load_estimator(version)
    labels, proba = runner.answer(CANCER.to_numpy(), with_proba=True)
    assert labels.tolist() == estimator.predict(CANCER).tolist()
    assert np.abs(proba - estimator.predict_proba(CANCER)).max() <= compiled.PROBA_TOLERANCE
    assert [e.details["runtime"] for e in _events(cofre, "model.compiled")] == ["onnx"]


def test_the_proof_runs_on_the_reference_data_when_it_is_given(cofre: Container) -> None:
    from governance.monitoring.profiles import ReferenceData

    data = CANCER.assign(target=load_breast_cancer().target).to_csv(index=False).encode()
    request = PublishRequest(
        name="cancer",
        artifact=cancer_pipeline(),
        card=CARD,
        reference=ReferenceData(data, "csv", "target"),
    )
    with cofre.write() as session:
        version = cofre.registry.publish(session, SYSTEM, request)
    proof = version.compilation.proof or {} if version.compilation else {}
    assert proof["sample"] == "reference" and proof["rows"] == len(CANCER)
    assert proof["passed"] and version.runtime == "onnx"


def test_the_compiled_model_at_rest_is_encrypted(cofre: Container) -> None:
    version = publish(cofre, "iris")
    row = version.compilation
    assert row is not None and row.artifact_file is not None
    plaintext = cofre.registry.load_compiled(version)
    assert onnx.load_model_from_string(plaintext).graph.output  # a real ONNX model
    at_rest = stored(cofre, row.artifact_file)
    assert plaintext[-64:] not in at_rest and plaintext[:64] not in at_rest
    try:
        parsed = onnx.load_model_from_string(at_rest)
    except Exception:  # protobuf's DecodeError: not ONNX at all
        parsed = None
    assert parsed is None or not parsed.graph.output


def test_an_estimator_skl2onnx_cannot_convert_stays_on_sklearn(cofre: Container) -> None:
    version = _publish(cofre, "logs", iris_log_pipeline())
    row = version.compilation
    assert row is not None and version.runtime == "sklearn"
    assert row.reason.startswith("skl2onnx cannot convert it: RuntimeError: FunctionTransformer")
    assert row.artifact_file is None and row.proof is None
    with pytest.raises(InvalidInput, match="runtime onnx refused: skl2onnx cannot convert"):
        _publish(cofre, "logs", iris_log_pipeline(), runtime="onnx")
    with cofre.read() as session:
        assert [v.version for v in cofre.registry.model(session, "logs").versions] == [1]


def test_a_model_not_proven_equal_is_refused_with_runtime_onnx(
    cofre: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forced: every probability now counts as too far from the estimator's."""
    monkeypatch.setattr(compiled, "PROBA_TOLERANCE", -1.0)
    with pytest.raises(InvalidInput, match="runtime onnx refused: not proven equal: prob"):
        _publish(cofre, "iris", iris_classifier(), runtime="onnx")
    version = _publish(cofre, "iris", iris_classifier())  # auto: published, on sklearn
    row = version.compilation
    assert row is not None and version.runtime == "sklearn" and row.artifact_file is None
    assert row.reason.startswith("not proven equal: probabilities differ by up to")
    assert row.proof is not None and row.proof["passed"] is False
    assert artifact_names(cofre) == [version.artifact_file]


def test_a_mismatched_label_is_counted_and_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forced: the compiled model answers the comparison with every label changed."""
    import skops.io as sio

    estimator = sio.loads(
        cancer_pipeline(), trusted=sio.get_untrusted_types(data=cancer_pipeline())
    )
    answer = compiled.CompiledEstimator.answer

    def flipped(self: compiled.CompiledEstimator, features: object, with_proba: bool) -> object:
        labels, proba = answer(self, features, with_proba)
        return 1 - labels, proba

    monkeypatch.setattr(compiled.CompiledEstimator, "answer", flipped)
    features = [{"name": str(n), "dtype": "float64"} for n in CANCER.columns]
    attempt = compiled.compile_estimator(
        estimator, features, [0, 1], has_proba=True, reference=CANCER
    )
    assert not attempt.proven and attempt.proof is not None
    assert attempt.proof.label_mismatches == len(CANCER) and attempt.proof.sample == "reference"
    assert attempt.reason == f"not proven equal: {len(CANCER)} of {len(CANCER)} labels differ"


def test_an_existing_version_is_compiled_later(cofre: Container) -> None:
    version = _publish(cofre, "iris", iris_classifier(), runtime="sklearn")
    assert version.runtime == "sklearn" and version.compilation is not None
    assert version.compilation.reason == "the publisher chose scikit-learn"
    with cofre.write() as session:
        again = cofre.registry.compile(session, SYSTEM, "iris", 1)
        assert again.runtime == "onnx" and again.sha256 == version.sha256
        assert again.compilation is not None
        first = (again.compilation.artifact_file, again.compilation.sha256)
    with cofre.write() as session:  # the same model again: its file is kept
        same = cofre.registry.compile(session, SYSTEM, "iris", 1).compilation
        assert same is not None and (same.artifact_file, same.sha256) == first
    with cofre.write() as session:  # back to scikit-learn: the file goes after the commit
        back = cofre.registry.compile(session, SYSTEM, "iris", 1, runtime="sklearn")
        assert back.runtime == "sklearn"
    assert artifact_names(cofre) == [version.artifact_file]
    compiled_events = _events(cofre, "model.compiled")
    assert [e.details["runtime"] for e in compiled_events] == ["sklearn", "onnx", "onnx", "sklearn"]


def test_rotating_the_master_key_rewraps_the_compiled_model(cofre: Container) -> None:
    version = publish(cofre, "iris")
    with cofre.write() as session:
        result = rotate_master_key(session, cofre.keyring, cofre.audit, SYSTEM)
    assert result.rewrapped == 2
    with cofre.read() as session:
        fresh = cofre.registry.resolve(session, "iris", version=1)
        assert fresh.compilation is not None and fresh.compilation.kek_id == result.new_kek
        assert cofre.registry.load_compiled(fresh) == cofre.registry.load_compiled(version)


def test_a_regressor_missing_the_tolerance_in_32_bits_is_compiled_in_64(
    cofre: Container,
) -> None:
    """A linear regression's terms cancel out on the sample: 32-bit arithmetic misses
    1e-6 relative, 64-bit meets it; the proof says which precision serves."""
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    version = _publish(cofre, "diabetes", sio.dumps(LinearRegression().fit(features, target)))
    row = version.compilation
    assert row is not None and version.runtime == "onnx", row and row.reason
    assert row.proof is not None and row.proof["precision"] == "float64"
    assert row.proof["max_relative_diff"] <= compiled.REGRESSION_TOLERANCE
    runner = compiled.CompiledEstimator(cofre.registry.load_compiled(version), None)
    outputs, proba = runner.answer(features.to_numpy(), with_proba=False)
    expected = cofre.registry.load_estimator(version).predict(features)
    assert proba is None and outputs.shape == expected.shape
    assert np.max(np.abs(outputs - expected) / np.abs(expected)) <= compiled.REGRESSION_TOLERANCE


def test_a_wide_schema_is_compared_on_fewer_rows() -> None:
    estimator = LinearRegression().fit(
        np.random.default_rng(0).random((20, 200_000)), np.arange(20)
    )
    assert compiled.generated_sample(estimator, 200_000).shape == (compiled.MIN_ROWS, 200_000)


def test_missing_values_are_part_of_the_proof_when_allowed() -> None:
    """A version that accepts NaN is compared on rows holding NaN, and answers them."""
    from sklearn.datasets import load_iris
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    features, target = load_iris(return_X_y=True, as_frame=True)
    estimator = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500))
    estimator.fit(features, target)
    schema = [{"name": str(n), "dtype": "float64"} for n in features.columns]
    sample = compiled.generated_sample(estimator, len(schema), allow_missing=True)
    assert np.isnan(sample).any()
    attempt = compiled.compile_estimator(
        estimator, schema, [0, 1, 2], has_proba=True, allow_missing=True
    )
    assert attempt.proven, attempt.reason
    assert attempt.model is not None
    runner = compiled.CompiledEstimator(attempt.model, [0, 1, 2])
    row = np.array([[5.1, np.nan, 1.4, 0.2]])
    labels, _ = runner.answer(row, with_proba=True)
    frame = pd.DataFrame(row, columns=features.columns)
    assert labels.tolist() == estimator.predict(frame).tolist()


def test_string_classes_come_back_as_the_estimator_gives_them() -> None:
    from sklearn.datasets import load_iris

    features, target = load_iris(return_X_y=True, as_frame=True)
    names = target.map({0: "setosa", 1: "versicolor", 2: "virginica"})
    estimator = LogisticRegression(max_iter=500).fit(features, names)
    classes = estimator.classes_.tolist()
    schema = [{"name": str(n), "dtype": "float64"} for n in features.columns]
    attempt = compiled.compile_estimator(estimator, schema, classes, has_proba=True)
    assert attempt.proven and attempt.model is not None
    labels, _ = compiled.CompiledEstimator(attempt.model, classes).answer(features, False)
    assert labels.tolist() == estimator.predict(features).tolist()
    assert {type(label) for label in labels.tolist()} == {str}
