"""`cofre models publish --runtime`, `compile`, `show` and `export --format onnx`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_breast_cancer
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry import compiled
from governance.registry.loading import load_trusted
from server.cli import cli
from server.container import Container
from tests.support.models import cancer_pipeline, iris_log_pipeline

CARD = ["--purpose", "score tumours", "--legal-basis", "legitimate interest"]
CANCER, _ = load_breast_cancer(return_X_y=True, as_frame=True)


def _run(runner: CliRunner, *args: str, code: int = 0) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_publish_says_which_runtime_and_show_says_why(runner: CliRunner, tmp_path: Path) -> None:
    model = _file(tmp_path, "cancer.skops", cancer_pipeline())
    out = _run(runner, "models", "publish", model, "--name", "cancer", *CARD)
    assert out.strip().endswith("runtime=onnx (proven equal)")
    logs = _file(tmp_path, "logs.skops", iris_log_pipeline())
    out = _run(runner, "models", "publish", logs, "--name", "logs", *CARD)
    assert "runtime=sklearn (skl2onnx cannot convert it: RuntimeError: FunctionTransformer" in out
    shown = _run(runner, "models", "show", "logs:1")
    assert "runtime=sklearn (skl2onnx cannot convert it" in shown
    shown = _run(runner, "models", "show", "cancer:1")
    assert "runtime=onnx (proven equal)" in shown and "0 label mismatches" in shown
    assert f"onnxruntime {ort.__version__}" in shown
    detail = json.loads(_run(runner, "models", "show", "cancer:1", "--json"))
    assert detail["runtime"] == "onnx" and detail["compilation"]["proof"]["passed"] is True


def test_runtime_onnx_fails_publish_with_a_one_line_reason(
    runner: CliRunner, tmp_path: Path, cofre: Container
) -> None:
    logs = _file(tmp_path, "logs.skops", iris_log_pipeline())
    result = runner.invoke(
        cli, ["models", "publish", logs, "--name", "logs", *CARD, "--runtime", "onnx"]
    )
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: runtime onnx refused: skl2onnx")
    with cofre.read() as session:
        assert cofre.registry.models(session, SYSTEM) == []


def test_runtime_onnx_refuses_a_model_not_proven_equal(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compiled, "PROBA_TOLERANCE", 0.0)  # forced: nothing is close enough
    model = _file(tmp_path, "cancer.skops", cancer_pipeline())
    out = _run(
        runner, "models", "publish", model, "--name", "c", *CARD, "--runtime", "onnx", code=1
    )
    assert "runtime onnx refused: not proven equal: probabilities differ by up to" in out


def test_compile_an_existing_version(runner: CliRunner, tmp_path: Path) -> None:
    model = _file(tmp_path, "cancer.skops", cancer_pipeline())
    out = _run(
        runner, "models", "publish", model, "--name", "cancer", *CARD, "--runtime", "sklearn"
    )
    assert "runtime=sklearn (the publisher chose scikit-learn)" in out
    out = _run(runner, "models", "compile", "cancer", "1")
    assert out.strip() == "cancer version 1 runtime=onnx (proven equal)"
    _run(runner, "models", "compile", "cancer", "9", code=1)


def test_export_writes_the_proven_model_and_its_manifest(
    runner: CliRunner, tmp_path: Path, cofre: Container
) -> None:
    model = _file(tmp_path, "cancer.skops", cancer_pipeline())
    _run(runner, "models", "publish", model, "--name", "cancer", *CARD)
    out_file = tmp_path / "edge" / "cancer.onnx"
    out_file.parent.mkdir()
    printed = _run(
        runner, "models", "export", "cancer:1", "--format", "onnx", "--out", str(out_file)
    )
    assert printed.startswith(f"wrote {out_file} (onnx, sha256=")
    data = out_file.read_bytes()
    manifest = json.loads((tmp_path / "edge" / "cancer.onnx.manifest.json").read_text())
    assert manifest["onnx"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["onnx"]["size"] == len(data) and manifest["format"] == "onnx"
    assert [f["name"] for f in manifest["input"]["features"]] == list(CANCER.columns)
    assert manifest["input"]["name"] == "input" and manifest["outputs"] == [
        "label",
        "probabilities",
    ]
    assert manifest["proof"]["passed"] is True and manifest["classes"] == [0, 1]
    # The exported file runs on its own, as the manifest says, with the estimator's answers.
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {"input": CANCER.to_numpy(np.float32)})
    estimator = load_trusted(cancer_pipeline())
    assert labels.tolist() == estimator.predict(CANCER).tolist()
    assert np.abs(proba - estimator.predict_proba(CANCER)).max() <= compiled.PROBA_TOLERANCE
    with cofre.read() as session_:
        event = session_.scalars(
            select(AuditRecord).where(AuditRecord.kind == "model.exported")
        ).one()
    assert (
        event.model_name == "cancer" and event.details["onnx_sha256"] == manifest["onnx"]["sha256"]
    )


def test_export_refuses_what_has_no_proven_model(runner: CliRunner, tmp_path: Path) -> None:
    logs = _file(tmp_path, "logs.skops", iris_log_pipeline())
    _run(runner, "models", "publish", logs, "--name", "logs", *CARD)
    onnx = ["--format", "onnx", "--out", str(tmp_path / "x.onnx")]
    out = _run(runner, "models", "export", "logs:1", *onnx, code=1)
    assert "has no proven ONNX model" in out and not (tmp_path / "x.onnx").exists()
    out = _run(runner, "models", "export", "logs", *onnx, code=2)
    assert "NAME:VERSION" in out
