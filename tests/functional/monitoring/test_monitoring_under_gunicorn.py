"""Monitoring end to end under real Gunicorn with three workers: a model published
with reference data, traffic with one feature shifted by two standard deviations,
ground truth sent back; `cofre monitor` (a separate process, as the job runs) finds
drift on that feature alone by PSI and by the KS test, the API returns the stored
report, every worker's /metrics shows the gauge, and the reported accuracy is
scikit-learn's accuracy_score on the labelled rows."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import accuracy_score

from governance.accounts.actor import SYSTEM
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from server import create_app
from server.container import Container
from server.setup import initialise
from tests.conftest import services_of
from tests.support.gunicorn import cofre_env, served
from tests.support.models import CARD
from tests.support.monitoring import classifier, labels_of, normal_frame, reference_csv

pytestmark = pytest.mark.functional


@dataclass
class Appliance:
    url: str
    cofre: Container
    settings: dict[str, Any]
    headers: dict[str, dict[str, str]]


@pytest.fixture
def appliance(tmp_path: Path, database_url: str) -> Iterator[Appliance]:
    settings = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "log_json": False,
    }
    flask_app = create_app(settings)
    cofre = services_of(flask_app)
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    publish = PublishRequest(
        name="risk",
        artifact=classifier(),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(reference_csv(), "csv"),
    )
    headers = {}
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, publish)
        for role in ("predictor", "auditor", "admin"):
            secret = cofre.accounts.create_key(session, SYSTEM, role, role).secret
            headers[role] = {"Authorization": f"Bearer {secret}"}
    try:
        with served(settings, tmp_path, workers=3) as url:
            yield Appliance(url, cofre, settings, headers)
    finally:
        cofre.close()


def _call(url: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            payload = answer.read()
            return answer.status, json.loads(payload) if payload[:1] in b"{[" else payload
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _cofre(settings: dict[str, Any], *args: str) -> str:
    command = [str(Path(sys.executable).with_name("cofre")), *args]
    done = subprocess.run(
        command, env=cofre_env(settings), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_shifted_feature_drifts_alone_and_feedback_scores_the_model(
    appliance: Appliance,
) -> None:
    frame = normal_frame(600, seed=11, shift={"x1": 2.0})
    truth = labels_of(frame)
    predicted: list[int] = []
    base = appliance.url
    for start in range(0, 600, 50):
        chunk = frame.iloc[start : start + 50]
        body = {"instances": chunk.to_dict("records")}
        if start % 100:
            body["subject_ids"] = [f"customer-{start + i}" for i in range(50)]
        status, answer = _call(
            f"{base}/api/v1/models/risk/predict", appliance.headers["predictor"], body
        )
        assert status == 200, answer
        predicted += answer["predictions"]
        if start < 300:  # ground truth for the first half only
            labels = {"ground_truth": [int(v) for v in truth[start : start + 50]]}
            url = f"{base}/api/v1/predictions/{answer['request_id']}/feedback"
            sent, reply = _call(url, appliance.headers["predictor"], labels)
            assert sent in (200, 201), reply

    printed = json.loads(_cofre(appliance.settings, "monitor", "risk", "--json"))["reports"][0]

    status, report = _call(f"{base}/api/v1/models/risk/monitoring", appliance.headers["auditor"])
    assert status == 200, report
    assert report["drift"] == printed["drift"]
    drift = report["drift"]
    assert [f for f in report["drifting"] if f != "__output__"] == ["x1"]
    assert drift["x1"]["psi"] > 0.25 and drift["x1"]["p_value"] < 0.05
    for quiet in ("x0", "x2"):
        assert drift[quiet]["psi"] < 0.1 and drift[quiet]["p_value"] > 0.05, drift[quiet]
    assert report["traffic"]["requests"] == 12 and report["traffic"]["rows"] == 600

    performance = report["performance"]
    assert performance["labelled_rows"] == 300
    assert performance["accuracy"] == pytest.approx(accuracy_score(truth[:300], predicted[:300]))

    for _ in range(6):  # whichever of the three workers answers
        status, text = _call(f"{base}/metrics", appliance.headers["admin"])
        assert status == 200
        gauges = _gauges(text.decode(), "cofre_feature_drift")
        assert gauges[("risk", "1", "x1", "psi")] > 0.25
        assert gauges[("risk", "1", "x0", "psi")] < 0.1
        accuracy = _gauges(text.decode(), "cofre_model_performance")[("risk", "1", "accuracy")]
        assert accuracy == pytest.approx(performance["accuracy"])


def _gauges(exposition: str, name: str) -> dict[tuple[str, ...], float]:
    found = {}
    for line in exposition.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels, value = line[len(name) + 1 :].rsplit("} ", 1)
        pairs = dict(part.split("=", 1) for part in labels.split(","))
        keys = (
            ("model", "version", "feature", "method")
            if "feature" in pairs
            else ("model", "version", "metric")
        )
        found[tuple(pairs[k].strip('"') for k in keys)] = float(value)
    return found
