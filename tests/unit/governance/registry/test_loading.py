"""Reading artifacts: only skops, only trusted types, pickle never deserialised."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from governance.errors import UntrustedArtifact
from governance.registry.loading import describe, is_trusted_type, load_trusted
from tests.support.models import cancer_pipeline, iris_classifier, unnamed_regressor

X = np.arange(20.0).reshape(10, 2)
Y = X[:, 0] * 2


class Custom(LinearRegression):
    """A class from outside the trusted list (this test module)."""


class Exploit:
    """Unpickling this creates `marker`: proof that the payload ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(Exploit(marker))
    with pytest.raises(UntrustedArtifact, match="pickle") as refused:
        load_trusted(data)
    assert "only skops" in refused.value.detail
    assert not marker.exists()
    # Sanity check that the payload is real: unpickling it would create the marker.
    pickle.loads(data)  # noqa: S301 - deliberately, to prove the test's premise
    assert marker.exists()


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_joblib_files_are_refused_and_never_run(tmp_path: Path, compress: object) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump(Exploit(marker), path, compress=compress)
    with pytest.raises(UntrustedArtifact, match="skops"):
        describe(path.read_bytes())
    assert not marker.exists()


def test_a_pickle_of_a_real_estimator_is_refused() -> None:
    with pytest.raises(UntrustedArtifact, match="pickle"):
        describe(pickle.dumps(LinearRegression().fit(X, Y)))


@pytest.mark.parametrize("data", [b"", b"hello", b"PK\x03\x04 not a zip"])
def test_other_files_are_not_skops(data: bytes) -> None:
    with pytest.raises(UntrustedArtifact, match="not a skops file"):
        describe(data)


def test_a_zip_without_a_skops_schema_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", '{"no": "protocol"}')
    with pytest.raises(UntrustedArtifact, match="not a skops file"):
        describe(buffer.getvalue())


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (Custom().fit(X, Y), f"{__name__}.Custom"),
        (make_pipeline(FunctionTransformer(np.save), LinearRegression()), "function:numpy.save"),
        (FunctionTransformer(os.system), f"{os.system.__module__}.system"),
        # numpy's C functions are saved as types; a trusted module is not enough.
        (FunctionTransformer(np.fromfile), "numpy.fromfile"),
        (FunctionTransformer(StandardScaler().fit(X).transform), "method:"),
    ],
    ids=["custom-class", "numpy.save", "os.system", "numpy.fromfile", "bound-method"],
)
def test_untrusted_types_are_refused_and_listed(estimator: object, expected: str) -> None:
    with pytest.raises(UntrustedArtifact, match="outside the trusted list") as refused:
        describe(sio.dumps(estimator))
    assert any(t.startswith(expected) for t in refused.value.untrusted_types)
    assert all(t in refused.value.detail for t in refused.value.untrusted_types)


def test_a_safe_numpy_function_is_trusted() -> None:
    model = make_pipeline(FunctionTransformer(np.log1p), LinearRegression()).fit(X, Y)
    loaded = load_trusted(sio.dumps(model))
    assert np.allclose(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize(
    ("name", "trusted"),
    [
        ("sklearn.linear_model._base.LinearRegression", True),
        ("numpy.ndarray", True),
        ("builtins.dict", True),
        ("builtins.eval", False),
        ("sklearn.utils._testing.TempMemmap", False),
        ("numpy.load", False),
        ("function:numpy.log", True),
        ("function:builtins.exec", False),
        ("method:sklearn.preprocessing._data.StandardScaler.transform", False),
        ("subprocess.Popen", False),
    ],
)
def test_the_allow_list(name: str, trusted: bool) -> None:
    assert is_trusted_type(name) is trusted


def test_facts_from_named_features() -> None:
    import sklearn

    facts = describe(iris_classifier())
    assert facts.feature_names is not None and facts.feature_names[0] == "sepal length (cm)"
    assert facts.n_features == 4
    assert facts.has_proba
    assert facts.classes == [0, 1, 2]
    assert facts.sklearn_version == sklearn.__version__
    assert facts.estimator_type.endswith("LogisticRegression")


def test_facts_from_unnamed_features_and_pipelines() -> None:
    regressor = describe(unnamed_regressor())
    assert (regressor.feature_names, regressor.n_features, regressor.has_proba) == (None, 3, False)
    assert regressor.classes is None
    pipeline = describe(cancer_pipeline())
    assert pipeline.estimator_type == "sklearn.pipeline.Pipeline"
    assert pipeline.n_features == 30 and pipeline.has_proba


def test_an_unfitted_estimator_is_refused() -> None:
    with pytest.raises(UntrustedArtifact, match="not fitted"):
        describe(sio.dumps(LinearRegression()))


def test_a_transformer_without_predict_is_refused() -> None:
    with pytest.raises(UntrustedArtifact, match="predict"):
        describe(sio.dumps(StandardScaler().fit(X)))
