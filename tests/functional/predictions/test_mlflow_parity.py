"""The MLflow door answers exactly as `mlflow models serve` does for the same model and
body: MLflow's own scoring server (mlflow-skinny, in process) is the reference."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import skops.io as sio
from flask.testing import FlaskClient
from sklearn.datasets import load_iris

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD, iris_classifier

pytestmark = [
    pytest.mark.functional,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]
FEATURES, _ = load_iris(return_X_y=True, as_frame=True)
ROWS = FEATURES.iloc[[0, 55, 140, 7]]
SPLIT = json.loads(ROWS.to_json(orient="split", index=False))


@pytest.fixture(scope="module")
def mlflow_server() -> Iterator[Any]:
    """MLflow's scoring server for the same estimator, saved with its signature."""
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    from fastapi.testclient import TestClient
    from mlflow.models import infer_signature
    from mlflow.pyfunc import load_model, scoring_server

    estimator = sio.loads(
        iris_classifier(), trusted=sio.get_untrusted_types(data=iris_classifier())
    )
    with tempfile.TemporaryDirectory() as directory:
        path = f"{directory}/model"
        mlflow_sklearn.save_model(
            estimator, path, signature=infer_signature(FEATURES, estimator.predict(FEATURES))
        )
        with TestClient(scoring_server.init(load_model(path))) as client:
            yield client


@pytest.fixture
def ours(client: FlaskClient, cofre: Container, api_key: Any) -> tuple[FlaskClient, Any]:
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest(
                name="iris", artifact=iris_classifier(), card=CARD, aliases=["production"]
            ),
        )
    return client, api_key("predictor")


BODIES: dict[str, Any] = {
    "dataframe_split": {"dataframe_split": SPLIT},
    "dataframe_records": {"dataframe_records": ROWS.to_dict(orient="records")},
    "instances": {"instances": ROWS.to_dict(orient="records")},
    "inputs_columns": {"inputs": ROWS.to_dict(orient="list")},
    "inputs_records": {"inputs": ROWS.to_dict(orient="records")},
}


@pytest.mark.parametrize("body", list(BODIES))
def test_same_json_body_same_answer(
    mlflow_server: Any, ours: tuple[FlaskClient, Any], body: str
) -> None:
    client, key = ours
    reference = mlflow_server.post("/invocations", json=BODIES[body])
    answer = client.post("/api/v1/models/iris/invocations", json=BODIES[body], headers=key)
    assert reference.status_code == 200, reference.text
    assert (answer.status_code, answer.json) == (200, reference.json())


def test_same_csv_same_answer(mlflow_server: Any, ours: tuple[FlaskClient, Any]) -> None:
    client, key = ours
    buffer = io.StringIO()
    ROWS.to_csv(buffer, index=False)
    headers = {"Content-Type": "text/csv"}
    reference = mlflow_server.post("/invocations", content=buffer.getvalue(), headers=headers)
    answer = client.post(
        "/api/v1/models/iris/invocations", data=buffer.getvalue(), headers=key | headers
    )
    assert (answer.status_code, answer.json) == (200, reference.json())


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"instances": [], "inputs": []}', "application/json"),
        ('{"rows": []}', "application/json"),
        ("x", "text/plain"),
    ],
)
def test_same_refusals(
    mlflow_server: Any, ours: tuple[FlaskClient, Any], body: str, content_type: str
) -> None:
    client, key = ours
    reference = mlflow_server.post(
        "/invocations", content=body, headers={"Content-Type": content_type}
    )
    answer = client.post(
        "/api/v1/models/iris/invocations", data=body, headers=key | {"Content-Type": content_type}
    )
    assert answer.status_code == reference.status_code
    if reference.headers["content-type"].startswith("application/json"):
        assert answer.json["error_code"] == reference.json()["error_code"]


def test_integer_column_names_answer_as_mlflow_does(
    client: FlaskClient, cofre: Container, api_key: Any
) -> None:
    """A model fitted without feature names, scored with what MLflow's clients send for
    it: `df.to_json(orient="split")` of a plain DataFrame (columns 0, 1, 2 and an
    index). `mlflow models serve` accepts it; so does the MLflow door, with the same
    answer."""
    pandas = pytest.importorskip("pandas")
    mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import load_model, scoring_server

    from tests.support.models import unnamed_regressor

    artifact = unnamed_regressor()
    estimator = sio.loads(artifact, trusted=sio.get_untrusted_types(data=artifact))
    rows = pandas.DataFrame(FEATURES.to_numpy()[[0, 55, 140], :3])
    body = {"dataframe_split": json.loads(rows.to_json(orient="split"))}
    assert body["dataframe_split"]["columns"] == [0, 1, 2]
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest(name="petal", artifact=artifact, card=CARD, aliases=["production"]),
        )
    answer = client.post(
        "/api/v1/models/petal/invocations", json=body, headers=api_key("predictor")
    )
    with tempfile.TemporaryDirectory() as directory:
        mlflow_sklearn.save_model(estimator, f"{directory}/model")
        with TestClient(scoring_server.init(load_model(f"{directory}/model"))) as reference:
            expected = reference.post("/invocations", json=body)
    assert expected.status_code == 200, expected.text
    assert answer.status_code == 200, answer.json
    # The same numbers to the last few bits (the core hands the estimator a float array).
    assert answer.json["predictions"] == pytest.approx(expected.json()["predictions"])
    assert answer.json["predictions"] == pytest.approx(estimator.predict(rows.to_numpy()).tolist())
