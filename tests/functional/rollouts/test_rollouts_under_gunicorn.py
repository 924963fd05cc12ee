"""Staged rollouts under real Gunicorn with three workers: a canary's split lands in
its binomial bounds and is sticky per subject; a shadow's answers all come from the
champion while the candidate's outputs are recorded with the right agreement; a
candidate failing on some rows trips the error-rate guardrail and every worker sends
traffic back to the champion within seconds."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio
from scipy import stats
from sklearn.datasets import load_iris
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry.service import PublishRequest
from server import create_app
from server.container import Container
from server.setup import initialise
from tests.conftest import services_of
from tests.support.gunicorn import served
from tests.support.models import (
    CARD,
    COLOUR_FEATURES,
    colour_classifier,
    iris_classifier,
    iris_classifier_v2,
)

pytestmark = pytest.mark.functional
FEATURES, _ = load_iris(return_X_y=True, as_frame=True)
RECORDS = FEATURES.to_dict(orient="records")


@dataclass
class Appliance:
    url: str
    cofre: Container
    predictor: dict[str, str]
    publisher: dict[str, str]


@pytest.fixture
def appliance(tmp_path: Path, database_url: str) -> Iterator[Appliance]:
    settings = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "db_lock_timeout_ms": 3000,
        "log_json": False,
        "alert_webhook_url": "http://127.0.0.1:9/alerts",  # the outbox fills; nobody posts
    }
    flask_app = create_app(settings)
    cofre = services_of(flask_app)
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    published = [
        ("iris", iris_classifier(), ["production"], None),
        ("iris", iris_classifier_v2(), [], None),
        ("colours", colour_classifier(), ["production"], COLOUR_FEATURES),
        ("colours", colour_classifier(strict=True), [], COLOUR_FEATURES),
    ]
    with cofre.write() as session:
        for name, artifact, aliases, features in published:
            request = PublishRequest(name, artifact, CARD, features=features, aliases=aliases)
            cofre.registry.publish(session, SYSTEM, request)
        predictor = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor").secret
        publisher = cofre.accounts.create_key(session, SYSTEM, "ds", "publisher").secret
    try:
        with served(settings, tmp_path, workers=3) as url:
            yield Appliance(url, cofre, _bearer(predictor), _bearer(publisher))
    finally:
        cofre.close()


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _call(url: str, body: Any, headers: dict[str, str], method: str = "POST") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _start(appliance: Appliance, model: str, **body: Any) -> dict[str, Any]:
    status, started = _call(
        f"{appliance.url}/api/v1/models/{model}/rollout", body, appliance.publisher, "PUT"
    )
    assert status == 201, started
    return started


def _status(appliance: Appliance, model: str) -> dict[str, Any]:
    status, body = _call(
        f"{appliance.url}/api/v1/models/{model}/rollout", None, appliance.publisher, "GET"
    )
    assert status == 200, body
    return body


def _predict_all(appliance: Appliance, model: str, bodies: list[dict[str, Any]]) -> list[Any]:
    url = f"{appliance.url}/api/v1/models/{model}/predict"

    def one(body: dict[str, Any]) -> Any:
        status, answer = _call(url, body, appliance.predictor)
        assert status == 200, answer
        return answer

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, bodies))


def _until(check: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_a_canary_splits_within_binomial_bounds_and_sticks_to_subjects(
    appliance: Appliance,
) -> None:
    rollout = _start(appliance, "iris", candidate=2, strategy="canary", percent=20)
    people = [f"person-{i}" for i in range(1000)]
    bodies = [
        {"instances": [RECORDS[i % len(RECORDS)]], "subject_ids": [person]}
        for i, person in enumerate(people)
    ]
    answers = _predict_all(appliance, "iris", bodies)
    by_candidate = sum(a["version"] == 2 for a in answers)
    low, high = stats.binom.interval(0.999, 1000, 0.20)
    assert low <= by_candidate <= high, by_candidate
    assert all(a["rollout"]["rollout"] == rollout["id"] for a in answers)
    assert {a["rollout"]["reason"] for a in answers} == {"subject-hash"}
    first = {p: a["version"] for p, a in zip(people, answers, strict=True)}
    again = _predict_all(appliance, "iris", bodies[:200] * 2)  # any worker, same person
    assert [a["version"] for a in again] == [first[p] for p in people[:200]] * 2
    expected = by_candidate + sum(first[p] == 2 for p in people[:200]) * 2

    def added_up() -> dict[str, Any] | None:
        figures = _status(appliance, "iris")
        champion, candidate = figures["variants"]["champion"], figures["variants"]["candidate"]
        done = champion["requests"] + candidate["requests"] == 1400
        return figures if done else None

    figures = _until(added_up)
    assert figures, ("the workers' tallies did not add up", _status(appliance, "iris")["variants"])
    assert figures["variants"]["candidate"]["requests"] == expected
    assert figures["variants"]["candidate"]["p99_ms"] is not None


def test_shadow_answers_from_the_champion_and_records_the_candidates_agreement(
    appliance: Appliance,
) -> None:
    _start(appliance, "iris", candidate=2, strategy="shadow")
    rows = RECORDS[::3]  # 50 rows
    answers = _predict_all(appliance, "iris", [{"instances": [row]} for row in rows])
    assert {a["version"] for a in answers} == {1}
    assert {a["rollout"]["reason"] for a in answers} == {"shadow"}
    candidate = sio.loads(
        iris_classifier_v2(), trusted=sio.get_untrusted_types(data=iris_classifier_v2())
    )
    expected = sum(
        a["predictions"][0] == p
        for a, p in zip(answers, candidate.predict(FEATURES.iloc[::3]).tolist(), strict=True)
    )
    figures = _until(
        lambda: (s := _status(appliance, "iris"))["variants"]["candidate"]["compared"] == 50 and s
    )
    assert figures, "the shadow scorings were not all recorded"
    candidate_figures = figures["variants"]["candidate"]
    assert candidate_figures["agreed"] == expected
    assert candidate_figures["agreement"] == pytest.approx(expected / 50)
    with appliance.cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == "prediction.shadow")
        shadows = list(session.scalars(stmt))
        assert len(shadows) == 50 and {r.model_version for r in shadows} == {2}
        outputs = [appliance.cofre.audit.decrypt_payload(session, r)[0]["output"] for r in shadows]
    by_request = {a["request_id"]: a for a in answers}
    assert all(r.request_id in by_request for r in shadows)
    assert sorted(outputs) == sorted(candidate.predict(FEATURES.iloc[::3]).tolist())


def test_a_failing_candidate_trips_the_guardrail_and_every_worker_returns_to_the_champion(
    appliance: Appliance,
) -> None:
    _start(
        appliance,
        "colours",
        candidate=2,
        strategy="canary",
        percent=50,
        sticky="request",
        guardrails=["error_rate<0.1"],
        min_requests=20,
    )
    bodies = [
        {"instances": [{"colour": "purple" if i % 3 == 0 else "red", "x": 0.5}]} for i in range(120)
    ]
    answers = _predict_all(appliance, "colours", bodies)  # never an error for the client
    # the guardrail may trip while they are still coming: the later ones are unrouted
    fallbacks = [a for a in answers if a.get("rollout", {}).get("reason") == "candidate-failed"]
    assert fallbacks and all(a["version"] == 1 for a in fallbacks)
    assert all(a["version"] == 1 for a in answers if "rollout" not in a)
    started = time.monotonic()
    ended = _until(lambda: (s := _status(appliance, "colours"))["status"] == "aborted" and s)
    assert ended, "the guardrail did not abort the rollout"
    assert time.monotonic() - started < 10
    assert ended["ended_by"] == "guardrail" and "error_rate" in ended["end_reason"]
    after = _predict_all(appliance, "colours", bodies[1:3] * 45)  # every worker, at once
    assert {a["version"] for a in after} == {1}
    assert all("rollout" not in a for a in after)
    with appliance.cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == "rollout.aborted")
        aborted = session.scalars(stmt).one()
    assert aborted.details is not None and aborted.details["automatic"] is True
    status, listed = _call(
        f"{appliance.url}/api/v1/alerts?model=colours", None, appliance.publisher, "GET"
    )
    assert status == 200
    (alert,) = listed["alerts"]  # one, however many workers saw the breach
    assert (alert["kind"], alert["state"], alert["version"]) == ("guardrail", "firing", 2)
    assert [d["channel"] for d in alert["deliveries"]] == ["webhook"]


@pytest.mark.parametrize(("right", "winner"), [((0.55, 0.95), "candidate"), ((0.8, 0.8), None)])
def test_an_ab_test_on_feedback_decides_for_a_better_candidate_and_not_for_an_equal_one(
    appliance: Appliance,
    right: tuple[float, float],
    winner: str | None,
    database_url: str,
    request: pytest.FixtureRequest,
) -> None:
    """Labels sent over the feedback API confirm the champion's answers with
    probability right[0], the candidate's with right[1]; the workers' checks record
    the group-sequential decision."""
    import numpy as np

    # alpha 0.001: request ids (so the split) are random; an A/A run declares a winner
    # at most 0.1 % of the time, and the planted difference is still found (z > 5)
    _start(
        appliance,
        "iris",
        candidate=2,
        strategy="ab",
        sticky="request",
        horizon=60,
        looks=3,
        alpha=0.001,
    )
    answers = _predict_all(appliance, "iris", [{"instances": [r]} for r in RECORDS[:170]])
    rng = np.random.default_rng(7)

    def label(answer: dict[str, Any]) -> int:
        truth = answer["predictions"][0]
        confirmed = rng.random() < right[answer["version"] - 1]
        url = f"{appliance.url}/api/v1/predictions/{answer['request_id']}/feedback"
        given = truth if confirmed else (truth + 1) % 3
        return _call(url, {"ground_truth": [given]}, appliance.predictor)[0]

    assert {label(a) for a in answers} == {201}
    _predict_all(appliance, "iris", [{"instances": [RECORDS[0]]}] * 6)  # a tally: a check
    decided = _until(lambda: (s := _status(appliance, "iris"))["decision"] and s, 30)
    assert decided, _status(appliance, "iris")["comparison"]
    assert decided["decision"]["winner"] == winner
    promote = _call(
        f"{appliance.url}/api/v1/models/iris/rollout/promote", None, appliance.publisher
    )[0]
    assert promote == (200 if winner == "candidate" else 409)
