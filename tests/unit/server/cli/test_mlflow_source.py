"""MLflow as the source: an MLflow model directory (sklearn flavour, skops only; pickle and
cloudpickle refused with the same message as any pickle), and `--from-mlflow
models:/NAME/VERSION` from a real `mlflow server` (SQLite backend, 127.0.0.1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import skops.io as sio
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from server.cli import cli
from server.container import Container
from tests.support.gunicorn import free_port

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]
mlflow_sklearn = pytest.importorskip("mlflow.sklearn")
CARD = ["--purpose", "score flowers", "--legal-basis", "legitimate interest"]
FEATURES, TARGET = load_iris(return_X_y=True, as_frame=True)
PICKLE_REFUSAL = "cofre accepts only skops files (skops.io.dump) and never loads pickle"


def _estimator() -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(FEATURES, TARGET)


def _save(directory: Path, serialization: str) -> Path:
    from mlflow.models import infer_signature

    estimator = _estimator()
    signature = infer_signature(FEATURES, estimator.predict(FEATURES))
    path = directory / f"model-{serialization}"
    mlflow_sklearn.save_model(
        estimator, str(path), signature=signature, serialization_format=serialization
    )
    return path


def test_an_mlflow_model_directory_publishes_with_its_signature(
    runner: CliRunner, tmp_path: Path, cofre: Container
) -> None:
    path = _save(tmp_path, "skops")
    result = runner.invoke(cli, ["models", "publish", str(path), "--name", "iris", *CARD, "--json"])
    assert result.exit_code == 0, result.output
    published = json.loads(result.output)
    assert [f["name"] for f in published["features"]] == list(FEATURES.columns)
    assert published["origin"]["source"] == "mlflow"
    assert published["sha256"]


@pytest.mark.parametrize("serialization", ["pickle", "cloudpickle"])
def test_pickle_flavours_are_refused_as_any_pickle(
    runner: CliRunner, tmp_path: Path, serialization: str
) -> None:
    path = _save(tmp_path, serialization)
    result = runner.invoke(cli, ["models", "publish", str(path), "--name", "iris", *CARD])
    assert result.exit_code != 0
    assert PICKLE_REFUSAL in result.output and len(result.output.strip().splitlines()) == 1
    raw = tmp_path / "raw.pkl"
    raw.write_bytes((path / "model.pkl").read_bytes())
    same = runner.invoke(cli, ["models", "publish", str(raw), "--name", "iris", *CARD])
    assert same.output == result.output  # the very message any pickle file gets


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1 (SQLite backend), killed after."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "mlflow.log").open("wb")
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        # Artifacts served by the tracking server itself (mlflow-artifacts:/ over HTTP),
        # so cofre reads nothing of MLflow's from a shared disk.
        "--artifacts-destination",
        str(tmp_path / "mlflow-artifacts"),
    ]
    # No background job runner: this server only tracks and registers.
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start: " + (tmp_path / "mlflow.log").read_text())
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
        log.close()


def test_publish_from_an_mlflow_registry(
    runner: CliRunner, mlflow_server: str, cofre: Container
) -> None:
    import mlflow
    from mlflow.models import infer_signature

    estimator = _estimator()
    mlflow.set_tracking_uri(mlflow_server)
    try:
        with mlflow.start_run() as run:
            mlflow.log_param("max_iter", 500)
            mlflow.set_tag("mlflow.source.git.commit", "9fceb02d0ae598e95dc970b74767f19372d61af8")
            mlflow.log_metric("train_accuracy", float(estimator.score(FEATURES, TARGET)))
            mlflow_sklearn.log_model(
                estimator,
                name="model",
                signature=infer_signature(FEATURES, estimator.predict(FEATURES)),
                registered_model_name="iris-classifier",
            )
    finally:
        mlflow.set_tracking_uri("")
    result = runner.invoke(
        cli,
        [
            "models",
            "publish",
            "--from-mlflow",
            "models:/iris-classifier/1",
            "--tracking-uri",
            mlflow_server,
            "--name",
            "iris",
            *CARD,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    published = json.loads(result.stdout)  # MLflow's download progress goes to stderr
    origin = published["origin"]
    assert origin["run_id"] == run.info.run_id
    assert origin["params"] == {"max_iter": "500"}
    assert origin["metrics"]["train_accuracy"] == pytest.approx(estimator.score(FEATURES, TARGET))
    assert origin["link"].startswith(mlflow_server)
    assert origin["source_commit"] == "9fceb02d0ae598e95dc970b74767f19372d61af8"
    assert run.info.run_id in published["card"]["description"]
    shown = runner.invoke(cli, ["models", "show", "iris:1"])
    assert f"run {run.info.run_id}" in shown.output
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        loaded = cofre.registry.load_estimator(version)
    assert (loaded.predict(FEATURES) == estimator.predict(FEATURES)).all()
    assert sio  # skops is what travelled: the registry loaded it with trusted types only
