"""Monitoring.run on a real appliance: rows scored by the prediction core, opened
from the audit log, compared with the reference profile and stored as rollups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from governance.accounts.actor import SYSTEM
from governance.monitoring.profiles import ReferenceData
from governance.monitoring.records import OUTPUT, MonitoringRollup
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD
from tests.support.monitoring import classifier, labels_of, normal_frame, reference_csv
from tests.support.scoring import rows_of, score

DAY = timedelta(hours=24)


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides | {"monitoring_profile_rows": 50, "db_lock_timeout_ms": 1000}


def _publish(cofre: Container, reference: bool = True) -> None:
    request = PublishRequest(
        name="risk",
        artifact=classifier(),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(reference_csv(), "csv") if reference else None,
    )
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)


def _traffic(cofre: Container, requests: int, shift: dict[str, float] | None = None) -> None:
    frame = normal_frame(100 * requests, seed=3, shift=shift)
    rows = frame.to_dict("records")
    for index in range(requests):
        chunk = rows[index * 100 : (index + 1) * 100]
        subjects = [f"person-{i}" if index % 2 else None for i in range(len(chunk))]
        score(cofre, subjects, name="risk", rows=chunk)


def _run(cofre: Container) -> dict[str, Any]:
    with cofre.read() as session:
        reports = cofre.monitoring.run(session, "risk", None, DAY)
    assert len(reports) == 1
    return reports[0]


def _rollups(cofre: Container) -> int:
    with cofre.read() as session:
        return int(session.scalar(select(func.count()).select_from(MonitoringRollup)) or 0)


def test_a_shifted_feature_drifts_and_the_others_do_not(cofre: Container) -> None:
    _publish(cofre)
    _traffic(cofre, 6, shift={"x1": 2.0})
    report = _run(cofre)
    features = [f for f in report["drifting"] if f != OUTPUT]
    assert features == ["x1"]
    drift = report["drift"]
    assert drift["x1"]["psi"] > 0.25 and drift["x1"]["p_value"] < 0.05
    for name in ("x0", "x2"):
        assert drift[name]["psi"] < 0.1 and drift[name]["p_value"] > 0.05, drift[name]
        assert drift[name]["drifting"] is False
    assert drift["x1"]["wasserstein"] == pytest.approx(2.0, abs=0.3)
    assert report["profile"] == {"source": "reference", "rows": 4000}
    assert report["traffic"]["requests"] == 6 and report["traffic"]["rows"] == 600
    assert report["quality"]["x1"]["missing_share"] == 0.0
    assert report["rows"] == {"seen": 600, "erased": 0}


def test_recomputing_a_window_replaces_its_rollups_and_readers_see_them(
    cofre: Container,
) -> None:
    _publish(cofre)
    _traffic(cofre, 2)
    first = _run(cofre)
    stored = _rollups(cofre)
    assert stored > 0
    _traffic(cofre, 1)
    second = _run(cofre)
    assert _rollups(cofre) == stored
    assert second["window"] == first["window"] and second["traffic"]["requests"] == 3
    with cofre.read() as session:
        read_back = cofre.monitoring.report(session, "risk", 1, DAY)
    assert read_back is not None
    assert read_back["drift"] == second["drift"]
    assert read_back["traffic"] == second["traffic"]


def test_a_version_without_reference_is_profiled_from_its_first_served_rows(
    cofre: Container,
) -> None:
    _publish(cofre, reference=False)
    score(cofre, [None] * 30, name="risk", rows=normal_frame(30, seed=5).to_dict("records"))
    assert _run(cofre)["profile"] is None  # 30 of the 50 rows it needs
    score(cofre, [None] * 30, name="risk", rows=normal_frame(30, seed=6).to_dict("records"))
    report = _run(cofre)
    assert report["profile"] == {"source": "served", "rows": 50}
    assert report["drifting"] == []
    assert set(report["drift"]) == {"x0", "x1", "x2", OUTPUT}


def test_performance_and_fairness_from_feedback_equal_sklearn(
    cofre: Container, client: Any, api_key: Any
) -> None:
    from sklearn.metrics import accuracy_score, recall_score

    _publish(cofre)
    frame = normal_frame(120, seed=8)
    truth = labels_of(frame).copy()
    truth[::5] = 1 - truth[::5]  # some answers wrong
    groups = ["a" if i % 3 else "b" for i in range(120)]
    predictor = api_key("predictor")
    predicted: list[int] = []
    for start in (0, 40, 80):
        rows = frame.iloc[start : start + 40].to_dict("records")
        request_id = score(cofre, [None] * 40, name="risk", rows=rows)
        predicted += [r["output"] for r in rows_of(cofre, request_id)]
        if start == 80:
            continue  # the last request gets no feedback
        body = {
            "ground_truth": [int(v) for v in truth[start : start + 40]],
            "groups": groups[start : start + 40],
        }
        sent = client.post(
            f"/api/v1/predictions/{request_id}/feedback", json=body, headers=predictor
        )
        assert sent.status_code in (200, 201), sent.json
    report = _run(cofre)
    perf = report["performance"]
    assert perf["labelled_rows"] == 80
    assert perf["accuracy"] == pytest.approx(accuracy_score(truth[:80], predicted[:80]))
    assert perf["recall"] == pytest.approx(recall_score(truth[:80], predicted[:80]))
    rates = report["fairness"]["groups"]
    for name in ("a", "b"):
        mine = [i for i in range(80) if groups[i] == name]
        assert rates[name]["selection_rate"] == pytest.approx(
            sum(predicted[i] == 1 for i in mine) / len(mine)
        )
    gap = abs(rates["a"]["selection_rate"] - rates["b"]["selection_rate"])
    assert report["fairness"]["selection_rate_gap"] == pytest.approx(gap)


def test_the_job_finalises_the_window_before_once(cofre: Container) -> None:
    _publish(cofre)
    _traffic(cofre, 1)
    with cofre.read() as session:
        first = cofre.monitoring.run_due(session, DAY)
    with cofre.read() as session:
        second = cofre.monitoring.run_due(session, DAY)
    assert len(first) == 2 and len(second) == 1
    assert first[0]["window"] == second[0]["window"]
    assert first[1]["window"]["end"] < first[0]["window"]["end"]


def test_an_erased_subject_leaves_later_reports(
    cofre: Container, client: Any, api_key: Any
) -> None:
    from governance.subjects.caller import Caller

    _publish(cofre)
    rows = normal_frame(4, seed=9).to_dict("records")
    request_id = score(cofre, ["ana", "ana", "bo", None], name="risk", rows=rows)
    body = {"ground_truth": [0, 1, 0, 1]}
    sent = client.post(
        f"/api/v1/predictions/{request_id}/feedback", json=body, headers=api_key("predictor")
    )
    assert sent.status_code == 201, sent.json
    before = _run(cofre)
    assert before["performance"]["labelled_rows"] == 4 and before["rows"]["erased"] == 0
    cofre.subjects.erase(Caller(SYSTEM), "ana", "request 1")
    after = _run(cofre)
    assert after["performance"]["labelled_rows"] == 2
    assert after["rows"] == {"seen": 2, "erased": 2}


class _WritesMeanwhile:
    """A label reader that writes, as a prediction's audit record would, while the
    window is being read."""

    def __init__(self, cofre: Container) -> None:
        self.cofre = cofre

    def labels(self, session: Any, *args: Any) -> dict[tuple[str, int], Any]:
        with self.cofre.write() as writer:
            self.cofre.jobs.open(writer, "probe", "test", None)
        return {}


def test_a_run_never_holds_the_write_lock_while_it_reads(
    cofre: Container, database_url: str
) -> None:
    from sqlalchemy.exc import OperationalError

    from governance.monitoring.service import Monitoring

    if not database_url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's")
    _publish(cofre)
    _traffic(cofre, 1)
    monitoring = Monitoring(
        cofre.audit, cofre.registry, cofre.monitoring.policy, _WritesMeanwhile(cofre), cofre
    )
    with cofre.read() as session:
        assert monitoring.run(session, "risk", 1, DAY)[0]["traffic"]["requests"] == 1
    with pytest.raises(OperationalError), cofre.write() as session:  # the lock held: stuck
        monitoring.run(session, "risk", 1, DAY)


def test_one_versions_failure_leaves_the_others_computed(cofre: Container) -> None:
    from governance.errors import CofreError, KeyUnavailable

    _publish(cofre)
    _traffic(cofre, 1)
    second = PublishRequest(
        name="other", artifact=classifier(), card=CARD, aliases=["production"], allow_duplicate=True
    )
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, second)
    score(cofre, [None], name="other", rows=normal_frame(1, seed=1).to_dict("records"))
    original = cofre.monitoring._scan

    def broken(session: Any, version: Any, *args: Any) -> Any:
        if version.model.name == "other":
            raise KeyUnavailable("a key is missing")
        return original(session, version, *args)

    cofre.monitoring._scan = broken  # type: ignore[method-assign]
    with pytest.raises(CofreError, match="other v1: a key is missing"), cofre.read() as session:
        cofre.monitoring.run_due(session, DAY)
    with cofre.read() as session:
        assert cofre.monitoring.report(session, "risk", 1, DAY) is not None
