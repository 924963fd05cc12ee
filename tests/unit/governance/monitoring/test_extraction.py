"""Extraction detection (issue 16): a key sweeping one feature at a time raises an
audited `extraction` alert with its evidence, to the webhook; a key sending rows like
the reference data does not; the alert resolves when the key's traffic is ordinary
again (or stops); the throttle is called only when a rate is configured."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.clock import utcnow
from governance.monitoring.alerts import EXTRACTION
from governance.monitoring.extraction import (
    ONE_FEATURE_SWEEP,
    ExtractionPolicy,
    coverage,
    evenly_spaced,
    one_feature_sweep,
    value_codes,
)
from governance.monitoring.records import Alert, AlertDelivery
from server.cli import cli
from server.container import Container
from server.jobs import extraction_work
from tests.support import clock as fake_clock
from tests.support.extraction import key_of, ordinary_rows, publish_risk, send, sweep_rows
from tests.support.monitoring import FEATURES

SCHEMA = [{"name": name, "dtype": "float64"} for name in FEATURES]


@pytest.fixture
def risk(cofre: Container) -> Container:
    publish_risk(cofre)
    return cofre


def _alerts(session: Session) -> list[Alert]:
    return list(session.scalars(select(Alert).where(Alert.kind == EXTRACTION)))


# -- statistics ---------------------------------------------------------------------------
def test_a_one_feature_sweep_is_counted_per_feature_and_pair() -> None:
    walked = sweep_rows(20, "x0")
    frame = pd.DataFrame([*walked, walked[0] | {"x2": 5.0}])  # one step along x2 too
    sweep = one_feature_sweep(value_codes(frame), FEATURES)
    assert sweep.rows == 21 and sweep.swept_rows == 21 and sweep.share == 1.0
    assert sweep.by_feature == {"x0": 20, "x1": 0, "x2": 2} and sweep.steps["x0"] == 20
    assert sweep.swept_features() == ["x0", "x2"]
    assert sweep.pairs == 20 * 19 // 2 + 1


def test_rows_of_different_people_are_not_a_sweep_and_duplicates_do_not_count() -> None:
    rows = ordinary_rows(200)
    frame = pd.DataFrame(rows + rows[:5])  # a client retrying five requests
    sweep = one_feature_sweep(value_codes(frame), FEATURES)
    assert sweep.swept_rows == 0 and sweep.pairs == 0


def test_ordinary_rows_of_coarse_measurements_stay_under_the_default_share() -> None:
    # Iris: four measurements to a millimetre, 150 flowers: real rows do share all
    # features but one now and then, far less often than a probe does.
    frame = load_iris(as_frame=True).frame.drop(columns=["target"])
    drawn = frame.sample(200, replace=True, random_state=0).reset_index(drop=True)
    sweep = one_feature_sweep(value_codes(drawn), list(frame.columns))
    assert 0 < sweep.share < ExtractionPolicy().sweep_share / 2


def test_coverage_measures_distance_from_the_reference_and_marks_grids(risk: Container) -> None:
    with risk.read() as session:
        profile = risk.registry.profiles.get(session, "risk", 1)
        assert profile is not None
        reference = profile.profile
    near = coverage(pd.DataFrame(ordinary_rows(200)), SCHEMA, reference)
    far = coverage(pd.DataFrame(sweep_rows(60)), SCHEMA, reference)
    assert near is not None and far is not None
    assert near.distance < 0.5 and far.distance > 2.0 and far.feature in {"x0", "x2"}
    assert far.grid == ["x1"] and near.grid == []
    assert evenly_spaced(np.linspace(0, 1, 7)) and not evenly_spaced(np.array([0.0, 1, 3, 4, 9]))


# -- the detector over served traffic ---------------------------------------------------
def test_a_sweep_raises_an_audited_alert_with_its_evidence_to_the_webhook(
    risk: Container,
) -> None:
    risk.alerts.webhook = True
    sweeper, ordinary = key_of(risk, "sweeper"), key_of(risk, "ordinary")
    send(risk, sweeper, sweep_rows(60))
    send(risk, ordinary, ordinary_rows(80))
    assert "2 key(s) judged, 1 suspicious; alerts: 1 fired" in extraction_work(risk)
    assert "alerts" not in extraction_work(risk)  # still firing: no second alert

    with risk.read() as session:
        [alert] = _alerts(session)
        evidence = alert.evidence
        [delivery] = session.scalars(select(AlertDelivery)).all()
        [event] = session.scalars(
            select(AuditRecord).where(AuditRecord.kind == "alert.firing")
        ).all()
    assert alert.model_name == "risk" and alert.model_version == 1 and alert.state == "firing"
    assert evidence["key"] == sweeper.name.removeprefix("key:")
    assert evidence["requests"] == 6 and evidence["rows"] == 60
    assert evidence["one_feature_share"] == 1.0 and evidence["one_feature_pairs"] == 60 * 59 // 2
    assert list(evidence["swept"]) == ["x1"] and evidence["swept"]["x1"]["steps"] == 60
    assert evidence["signals"][0] == ONE_FEATURE_SWEEP and "x1" in evidence["breaching"]
    assert evidence["distance"]["psi"] > 2.0 and evidence["evenly_spaced"] == ["x1"]
    start, end = evidence["window"]["start"], evidence["window"]["end"]
    assert start < end and "throttle" not in evidence
    assert delivery.payload["rule"]["kind"] == EXTRACTION
    assert delivery.payload["evidence"]["key"] == evidence["key"]
    assert event.details["key"] == evidence["key"] and "x1" in event.details["reason"]
    assert event.model_name == "risk" and event.model_version == 1


def test_ordinary_traffic_and_too_few_rows_raise_nothing(risk: Container) -> None:
    send(risk, key_of(risk, "a"), ordinary_rows(120, seed=11))
    send(risk, key_of(risk, "b"), sweep_rows(20))  # under the 50 rows judged at all
    send(risk, SYSTEM, sweep_rows(60))  # not an API key: nothing to throttle
    assert extraction_work(risk) == "1 key(s) judged, 0 suspicious"
    with risk.read() as session:
        assert _alerts(session) == []


def test_the_alert_resolves_when_the_keys_traffic_is_ordinary_again(
    risk: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = fake_clock.install(monkeypatch, utcnow() - timedelta(hours=3))
    sweeper = key_of(risk)
    send(risk, sweeper, sweep_rows(60))
    detector = risk.extraction
    with risk.read() as session:
        findings = detector.scan(session, now=clock.now)
    with risk.write() as session:
        assert [t.state for t in detector.judge(session, findings)] == ["firing"]

    clock.advance(hours=2)  # the sweep has left the one-hour window
    send(risk, sweeper, ordinary_rows(60))
    with risk.read() as session:
        findings = detector.scan(session, now=clock.now)
    with risk.write() as session:
        assert [t.state for t in detector.judge(session, findings)] == ["resolved"]
        [alert] = _alerts(session)
        assert alert.resolution is not None
        assert alert.resolution["reason"].startswith("traffic looks ordinary again")
        assert alert.resolution["one_feature_share"] == 0.0
    # Later still, the key fell silent: nothing left to resolve, nothing fires.
    assert extraction_work(risk) == "0 key(s) judged, 0 suspicious"


def test_a_quiet_key_resolves_its_alert(risk: Container) -> None:
    send(risk, key_of(risk), sweep_rows(60))
    extraction_work(risk)
    detector = risk.extraction
    with risk.read() as session:
        later = detector.scan(session, now=utcnow() + timedelta(hours=2))
    with risk.write() as session:
        [resolved] = detector.judge(session, later)
        assert resolved.state == "resolved" and "too few" in resolved.evidence["reason"]


def _throttled(risk: Container, rate: str, wired: bool) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []

    def throttle(session: Session, prefix: str, given: Any) -> None:
        assert isinstance(session, Session)
        calls.append((prefix, given))

    detector = risk.extraction
    monkeypatched = type(detector.policy)(**{**detector.policy.__dict__, "throttle_rate": rate})
    detector.policy = monkeypatched
    detector.throttle = throttle if wired else None
    return calls


def test_the_throttle_is_called_once_when_a_rate_is_configured(risk: Container) -> None:
    calls = _throttled(risk, "1/s", wired=True)
    sweeper = key_of(risk)
    send(risk, sweeper, sweep_rows(60))
    extraction_work(risk)
    extraction_work(risk)  # still firing: not throttled again
    assert calls == [(sweeper.name.removeprefix("key:"), "1/s")]
    with risk.read() as session:
        [alert] = _alerts(session)
        assert alert.evidence["throttle"] == "1/s"


@pytest.mark.parametrize(("rate", "wired"), [("", True), ("1/s", False)])
def test_no_throttle_without_a_rate_or_a_wired_throttle(
    risk: Container, rate: str, wired: bool
) -> None:
    calls = _throttled(risk, rate, wired)
    send(risk, key_of(risk), sweep_rows(60))
    assert "1 fired" in extraction_work(risk)
    assert calls == []
    with risk.read() as session:
        [alert] = _alerts(session)
        assert "throttle" not in alert.evidence


def test_rule_evaluation_leaves_extraction_alerts_alone(risk: Container) -> None:
    send(risk, key_of(risk), sweep_rows(60))
    extraction_work(risk)
    with risk.write() as session:
        assert risk.alerts.evaluate(session, "risk", 1) == []
        assert [a.state for a in _alerts(session)] == ["firing"]


def test_cofre_alerts_extraction_judges_now_and_prints_each_key(
    risk: Container, runner: CliRunner
) -> None:
    send(risk, key_of(risk, "sweeper"), sweep_rows(60))
    send(risk, key_of(risk, "calm"), ordinary_rows(60))
    shown = runner.invoke(cli, ["alerts", "extraction"])
    assert shown.exit_code == 0, shown.output
    assert "SWEEP risk v1  key " in shown.output and "ok    risk v1" in shown.output
    assert "alert 1 firing: risk v1" in shown.output
    again = runner.invoke(cli, ["alerts", "extraction", "--json"])
    body = json.loads(again.output)
    assert sorted(f["one_feature_share"] for f in body["findings"]) == [0.0, 1.0]
    assert body["alerts"] == []  # already firing
    with risk.read() as session:
        [event] = session.scalars(
            select(AuditRecord).where(AuditRecord.kind == "alert.firing")
        ).all()
    assert event.actor_type == "system" and event.actor_id.startswith("cli:")


def test_random_queries_far_outside_the_reference_fire_on_distance_alone(
    risk: Container,
) -> None:
    # A grid-free probe of the model's extremes: no two rows share two features.
    rng = np.random.default_rng(5)
    far = [
        dict(zip(FEATURES, map(float, row), strict=True)) for row in rng.uniform(-30, 30, (60, 3))
    ]
    send(risk, key_of(risk), far)
    assert "1 suspicious" in extraction_work(risk)
    with risk.read() as session:
        [alert] = _alerts(session)
    evidence = alert.evidence
    assert evidence["signals"] == ["off_profile"] and evidence["one_feature_share"] == 0.0
    assert evidence["distance"]["psi"] >= 2.0
    assert evidence["breaching"] == [evidence["distance"]["feature"]]
    assert min(evidence["out_of_range_share"].values()) > 0.5
