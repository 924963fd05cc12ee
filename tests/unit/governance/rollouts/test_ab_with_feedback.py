"""An A/B rollout judged on ground truth sent as feedback: a planted better candidate
(its answers confirmed by the labels more often) is decided for, and then may be
promoted; two equally good variants reach the horizon without a winner."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris

from governance.accounts.actor import SYSTEM, Actor
from governance.errors import Conflict
from governance.monitoring.feedback import GivenLabel, Submission
from governance.rollouts.service import RolloutRequest
from governance.subjects.caller import Caller
from server.container import Container
from server.inference.predictor import Call, Decoded
from server.inference.table import Table
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish

PREDICTOR = Actor(type="key", id="7", role="predictor", name="key:test")
FEATURES, _ = load_iris(return_X_y=True, as_frame=True)
ROWS = FEATURES.to_dict(orient="records")


@pytest.fixture
def iris(cofre: Container) -> Container:
    publish(cofre, aliases=["production"])
    publish(cofre, artifact=iris_classifier_v2())
    return cofre


def _run(cofre: Container, right: dict[int, float], requests: int, seed: int) -> dict:
    """Serve `requests` one-row calls under an A/B rollout, then label each: the
    version's answer with probability right[version], another class otherwise."""
    rng = np.random.default_rng(seed)
    with cofre.write() as session:
        plan = RolloutRequest("iris", 2, "ab", percent=50, horizon=60, looks=3)
        rollout_id = cofre.rollouts.start(session, SYSTEM, plan).id
    for i in range(requests):
        call = Call(endpoint="native", model="iris", request_id=f"ab{seed}-{i}", path="/p")
        row = ROWS[i % len(ROWS)]
        result = cofre.predictor.predict(
            lambda: PREDICTOR, call, lambda _, row=row: Decoded(table=Table([row]))
        )
        answer = result.predictions[0]
        truth = answer if rng.random() < right[result.version] else (answer + 1) % 3
        with cofre.write() as session:
            cofre.feedback.record(
                session,
                Caller(PREDICTOR, "api", None),
                Submission(call.request_id, (GivenLabel(0, truth),), every_row=True),
            )
    cofre.rollout_traffic.drain()
    with cofre.write() as session:
        assert cofre.rollout_reports.check(session, SYSTEM, rollout_id) is None
    with cofre.read() as session:
        return cofre.rollout_reports.status(session, "iris")


def test_a_planted_better_candidate_wins_and_can_be_promoted(iris: Container) -> None:
    status = _run(iris, {1: 0.55, 2: 0.95}, requests=170, seed=1)
    comparison = status["comparison"]
    assert comparison["candidate"]["value"] > comparison["champion"]["value"]
    assert comparison["test"]["test"] == "two-proportion-z"
    assert status["decision"]["winner"] == "candidate"
    assert status["decision"]["p_value"] < 0.05 / 3
    low, high = comparison["candidate"]["ci"]
    assert low < comparison["candidate"]["value"] < high
    with iris.write() as session:
        assert iris.rollouts.promote(session, SYSTEM, "iris").status == "promoted"


def test_equal_candidates_reach_the_horizon_without_a_winner(iris: Container) -> None:
    status = _run(iris, {1: 0.8, 2: 0.8}, requests=170, seed=2)
    decision = status["decision"]
    assert decision is not None and decision["winner"] is None and decision["no_difference"]
    with pytest.raises(Conflict), iris.write() as session:
        iris.rollouts.promote(session, SYSTEM, "iris")
