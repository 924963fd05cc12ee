"""Ground truth under real Gunicorn, on SQLite and PostgreSQL: predictions through the
native door (two worker processes), labels over HTTP in both body forms and with
`cofre feedback import`, bad bodies refused with 4xx; the labels monitoring reads give
the accuracy scikit-learn computes on the same rows; erasing a subject removes their
labels from what monitoring reads, their export shows them erased, and the chain
verifies."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score

from governance.clock import utcnow
from tests.functional.predictions.conftest import Appliance
from tests.support.gunicorn import cofre_env

pytestmark = pytest.mark.functional
FEATURES, TARGET = load_iris(return_X_y=True, as_frame=True)
# Rows from all three classes, so some predictions are right and some may be wrong.
PICKED = [0, 1, 50, 51, 70, 77, 83, 100, 106, 119, 133, 134]


def _call(url: str, body: Any, headers: dict[str, str], raw: bytes | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=raw if raw is not None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"] == "application/problem+json"
        return error.code, json.loads(error.read() or b"null")


def _predict(appliance: Appliance, rows: list[int], subjects: list[str | None]) -> Any:
    instances = FEATURES.iloc[rows].to_dict(orient="records")
    status, answer = _call(
        f"{appliance.url}/api/v1/models/iris/predict",
        {"instances": instances, "subject_ids": subjects},
        appliance.predictor,
    )
    assert status == 200, answer
    return answer


def _feedback(appliance: Appliance, request_id: str, body: Any, raw: bytes | None = None) -> Any:
    url = f"{appliance.url}/api/v1/predictions/{request_id}/feedback"
    return _call(url, body, appliance.predictor, raw)


def _labels(appliance: Appliance) -> dict[tuple[str, int], Any]:
    now = utcnow()
    with appliance.cofre.read() as session:
        return appliance.cofre.feedback.labels(
            session, "iris", 1, now - timedelta(hours=1), now + timedelta(hours=1)
        )


def _cofre(appliance: Appliance, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("cofre")), *args]
    return subprocess.run(
        command, env=cofre_env(appliance.settings), capture_output=True, text=True, timeout=120
    )


def test_feedback_gives_sklearn_accuracy_and_erasure_removes_it(
    appliance: Appliance, tmp_path: Path
) -> None:
    truth = [int(TARGET.iloc[i]) for i in PICKED]
    people = [f"person-{i}" if i % 2 else None for i in range(len(PICKED))]
    answers = [
        _predict(appliance, PICKED[start : start + 4], people[start : start + 4])
        for start in range(0, len(PICKED), 4)
    ]
    first, second, third = (a["request_id"] for a in answers)

    status, recorded = _feedback(
        appliance, first, {"ground_truth": truth[:4], "groups": ["a", "b", "a", "b"]}
    )
    assert status == 201 and recorded["rows"] == [0, 1, 2, 3], recorded
    rows = [{"row": i, "ground_truth": truth[4 + i], "group": "a"} for i in range(4)]
    assert _feedback(appliance, second, {"rows": rows})[0] == 201
    wrong = [{"row": 0, "ground_truth": (truth[4] + 1) % 3}]
    assert _feedback(appliance, second, {"rows": wrong})[0] == 201
    assert _feedback(appliance, second, {"rows": rows[:1]})[1]["corrections"] == [0]
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text(
        "request_id,row,ground_truth\n" + "".join(f"{third},{i},{truth[8 + i]}\n" for i in range(4))
    )
    imported = _cofre(appliance, "feedback", "import", "iris", str(labels_file))
    assert imported.returncode == 0, imported.stderr

    assert _feedback(appliance, "0" * 32, {"ground_truth": [0]})[0] == 404
    assert _feedback(appliance, first, {"ground_truth": [0]})[0] == 422
    assert _feedback(appliance, first, {"rows": [{"row": 9, "ground_truth": 0}]})[0] == 422
    assert _feedback(appliance, first, {"ground_truth": [0, 1, 2, "x"]})[0] == 422
    assert _feedback(appliance, first, {"truth": []})[0] == 400
    assert _feedback(appliance, first, None, raw=b'{"ground_truth": [')[0] == 400

    labels = _labels(appliance)
    predicted = [p for answer in answers for p in answer["predictions"]]
    refs = [(a["request_id"], i) for a in answers for i in range(4)]
    assert [labels[ref].ground_truth for ref in refs] == truth
    ours = sum(labels[ref].ground_truth == p for ref, p in zip(refs, predicted, strict=True))
    assert ours / len(refs) == accuracy_score(truth, predicted)
    assert labels[(first, 1)].group == "b" and labels[(third, 0)].group is None

    status, erased = _call(
        f"{appliance.url}/api/v1/subjects/erasure",
        {"subject_id": "person-1", "reason": "asked"},
        appliance.auditor,
    )
    assert status == 200 and erased["keys_destroyed"] == 1, erased
    after = _labels(appliance)
    assert (first, 1) not in after and len(after) == len(refs) - 1
    status, export = _call(
        f"{appliance.url}/api/v1/subjects/export", {"subject_id": "person-1"}, appliance.auditor
    )
    [decision] = export["decisions"]
    assert decision["erased"] and [f["erased"] for f in decision["feedback"]] == [True]
    verified = _cofre(appliance, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
