"""MLflow as a source of models: an MLflow model directory, or a registered model version
fetched from an MLflow tracking server (`models:/NAME/VERSION`).

Only the sklearn flavour serialised with skops is taken. The pickle and cloudpickle
serialisations are refused by the same check, with the same message, as any pickle
file (`read_schema`). The input schema comes from the model's signature, the run id
from the MLmodel file, and from the server also the run's parameters and metrics.

Needs the `cofre[mlflow]` extra (the mlflow-skinny client and its YAML reader).
A fetched model passes through a private temporary directory that MLflow's client
downloads into (it is already plaintext in MLflow's artifact store), removed at once.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.errors import InvalidInput, MalformedInput, NotFound, UntrustedArtifact
from governance.registry.loading import read_schema

# MLflow column types -> cofre's feature dtypes.
DTYPES = {
    "double": "float64",
    "float": "float64",
    "long": "int64",
    "integer": "int64",
    "boolean": "bool",
    "string": "string",
}
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/]+)/(?P<version>\d+)$")
MISSING_EXTRA = "reading MLflow models needs the MLflow client: pip install 'cofre[mlflow]'"


@dataclass(frozen=True)
class MlflowModel:
    """What cofre takes from an MLflow model."""

    artifact: bytes
    features: list[dict[str, str]] | None
    run_id: str | None
    source: str
    link: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    source_commit: str | None = None  # the run's `mlflow.source.git.commit` tag


def is_model_directory(path: Path) -> bool:
    return path.is_dir() and (path / "MLmodel").is_file()


def read_model_directory(path: Path, source: str | None = None) -> MlflowModel:
    """The skops estimator, schema and run id of the MLflow model directory `path`."""
    meta = _mlmodel(path / "MLmodel")
    flavour = (meta.get("flavors") or {}).get("sklearn")
    if not isinstance(flavour, dict):
        raise UntrustedArtifact("the MLflow model has no sklearn flavour")
    file_name = str(flavour.get("pickled_model") or "")
    artifact_path = (path / file_name).resolve()
    if not file_name or path.resolve() not in artifact_path.parents or not artifact_path.is_file():
        raise MalformedInput("the MLflow model's sklearn flavour names no file inside it")
    artifact = artifact_path.read_bytes()
    if flavour.get("serialization_format") != "skops":
        read_schema(artifact)  # pickle and cloudpickle are refused here, as any pickle
        raise UntrustedArtifact(
            "the file is a pickle (or joblib/cloudpickle) file; cofre accepts only skops "
            "files (skops.io.dump) and never loads pickle"
        )
    run_id = meta.get("run_id")
    return MlflowModel(
        artifact=artifact,
        features=_features(meta.get("signature")),
        run_id=str(run_id) if run_id else None,
        source=source or str(path),
    )


# MLflow sets it on a run started from a git checkout.
GIT_COMMIT_TAG = "mlflow.source.git.commit"


def fetch(uri: str, tracking_uri: str) -> MlflowModel:
    """A registered model version from an MLflow tracking server, with its run's
    parameters and metrics."""
    match = _MODELS_URI.match(uri)
    if match is None:
        raise InvalidInput("--from-mlflow takes models:/NAME/VERSION")
    try:
        import mlflow.artifacts
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise InvalidInput(MISSING_EXTRA) from None
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name, version = match["name"], match["version"]
    try:
        registered = client.get_model_version(name, version)
        with tempfile.TemporaryDirectory(prefix="cofre-mlflow-") as scratch:
            # Where the version's files are, asked of this server's registry (not of
            # the process-wide registry URI that `models:/` would be resolved against).
            location = client.get_model_version_download_uri(name, version)
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=scratch, tracking_uri=tracking_uri
            )
            model = read_model_directory(Path(local), source=uri)
        run = client.get_run(registered.run_id) if registered.run_id else None
    except MlflowException as exc:
        raise NotFound(
            f"MLflow at {tracking_uri}: {str(exc.message).splitlines()[0][:200]}"
        ) from None
    return MlflowModel(
        artifact=model.artifact,
        features=model.features,
        run_id=registered.run_id or model.run_id,
        source=uri,
        link=f"{tracking_uri.rstrip('/')}/#/models/{name}/versions/{version}",
        params=dict(run.data.params) if run else {},
        metrics={k: float(v) for k, v in run.data.metrics.items()} if run else {},
        source_commit=run.data.tags.get(GIT_COMMIT_TAG) if run else None,
    )


def _mlmodel(path: Path) -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        raise InvalidInput(MISSING_EXTRA) from None
    try:
        value = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        raise MalformedInput("the MLmodel file is not readable YAML") from None
    if not isinstance(value, dict):
        raise MalformedInput("the MLmodel file holds no mapping")
    return value


def _features(signature: Any) -> list[dict[str, str]] | None:
    """Column-based input signature -> [{name, dtype}]; None without one (tensors too)."""
    import json

    if not isinstance(signature, dict) or not signature.get("inputs"):
        return None
    try:
        inputs = json.loads(signature["inputs"])
    except (TypeError, ValueError):
        raise MalformedInput("the MLmodel signature's inputs are not JSON") from None
    if not all(isinstance(c, dict) and c.get("name") and c.get("type") in DTYPES for c in inputs):
        return None
    return [{"name": str(c["name"]), "dtype": DTYPES[c["type"]]} for c in inputs]
