"""A subject's rights under real Gunicorn, on SQLite and PostgreSQL: scored through the
native door (several worker processes), the MLflow door (`params.subject_ids`), the Open
Inference door (`parameters.subject_ids`) and the batch CLI, found by export; erased, their
rows are unreadable in every export while `cofre audit verify` passes; scored again
afterwards; a legal hold blocks the erasure."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris

from tests.functional.predictions.conftest import Appliance
from tests.support.gunicorn import cofre_env

pytestmark = pytest.mark.functional
FEATURES, _ = load_iris(return_X_y=True, as_frame=True)
PERSON = "cpf-123.456.789-00"


def _call(url: str, body: Any, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _native(appliance: Appliance, subjects: list[str | None]) -> str:
    rows = FEATURES.iloc[: len(subjects)].to_dict(orient="records")
    status, answer = _call(
        f"{appliance.url}/api/v1/models/iris/predict",
        {"instances": rows, "subject_ids": subjects},
        appliance.predictor,
    )
    assert status == 200, answer
    return str(answer["request_id"])


def _mlflow(appliance: Appliance) -> None:
    rows = FEATURES.iloc[:1].to_dict(orient="records")
    status, answer = _call(
        f"{appliance.url}/api/v1/models/iris/invocations",
        {"dataframe_records": rows, "params": {"subject_ids": [PERSON]}},
        appliance.predictor,
    )
    assert status == 200, answer


def _v2(appliance: Appliance) -> None:
    values = FEATURES.iloc[0].tolist()
    body = {
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 4], "data": values}],
        "parameters": {"subject_ids": [PERSON]},
    }
    status, answer = _call(f"{appliance.url}/v2/models/iris/infer", body, appliance.predictor)
    assert status == 200, answer


def _batch(appliance: Appliance, tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    people = [PERSON if i % 2 == 0 else f"other-{i}" for i in range(6)]
    FEATURES.iloc[:6].assign(person=people).to_csv(source, index=False)
    command = [
        str(Path(sys.executable).with_name("cofre")),
        "predict-batch",
        "iris",
        str(source),
        str(target),
        "--subject-column",
        "person",
    ]
    done = subprocess.run(
        command, env=cofre_env(appliance.settings), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def _export(appliance: Appliance, subject: str = PERSON) -> dict[str, Any]:
    status, document = _call(
        f"{appliance.url}/api/v1/subjects/export", {"subject_id": subject}, appliance.auditor
    )
    assert status == 200, document
    return dict(document)


def _verify(appliance: Appliance) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("cofre")), "audit", "verify"]
    return subprocess.run(
        command, env=cofre_env(appliance.settings), capture_output=True, text=True, timeout=120
    )


def test_a_subject_is_found_erased_and_scored_again(appliance: Appliance, tmp_path: Path) -> None:
    native = [_native(appliance, [PERSON]) for _ in range(4)]  # across the workers
    shared = _native(appliance, [PERSON, "someone-else"])
    _mlflow(appliance)
    _v2(appliance)
    _batch(appliance, tmp_path)
    decisions = _export(appliance)["decisions"]
    endpoints = sorted(d["endpoint"] for d in decisions)
    assert endpoints == ["batch"] * 3 + ["mlflow"] + ["native"] * 5 + ["v2"]
    assert {d["request_id"] for d in decisions} >= {*native, shared}
    assert all(d["input"] and not d["erased"] for d in decisions)

    status, hold = _call(
        f"{appliance.url}/api/v1/subjects/holds",
        {"subject_id": PERSON, "reason": "case 12"},
        appliance.auditor,
    )
    assert status == 201, hold
    status, refused = _call(
        f"{appliance.url}/api/v1/subjects/erasure",
        {"subject_id": PERSON, "reason": "request 1"},
        appliance.auditor,
    )
    assert status == 409 and "legal hold" in refused["detail"]
    _call(
        f"{appliance.url}/api/v1/subjects/holds/release", {"subject_id": PERSON}, appliance.auditor
    )
    status, erased = _call(
        f"{appliance.url}/api/v1/subjects/erasure",
        {"subject_id": PERSON, "reason": "request 1"},
        appliance.auditor,
    )
    assert status == 200 and erased["keys_destroyed"] >= 1, erased

    after = _export(appliance)["decisions"]
    assert len(after) == 10 and all(d["erased"] and d["input"] is None for d in after)
    status, records = _call(
        f"{appliance.url}/api/v1/audit/subjects/export", {"subject_id": PERSON}, appliance.auditor
    )
    assert status == 200
    assert all(row["data"] == {"erased": True} for r in records["records"] for row in r["rows"])
    other = _export(appliance, "someone-else")["decisions"]
    assert other[0]["input"] and not other[0]["erased"]
    verified = _verify(appliance)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    again = _native(appliance, [PERSON])
    latest = {d["request_id"]: d for d in _export(appliance)["decisions"]}
    assert latest[again]["input"] and not latest[again]["erased"]
    assert all(latest[r]["erased"] for r in native)
    assert _verify(appliance).returncode == 0
