"""The rollout statistics: quantiles of the latency histogram, the tests, the sample
size, and the group-sequential A/B decision (no peeking error: over many simulated
A/A tests the share that declares a winner stays at most alpha)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from governance.rollouts import statistics
from governance.rollouts.statistics import Samples

PLAN = {"alpha": 0.05, "power": 0.8, "horizon": 400, "looks": 4}


def _rates(rng: np.random.Generator, p: float, n: int) -> Samples:
    return Samples("accuracy", list(map(float, rng.random(n) < p)))


def test_quantiles_are_bucket_upper_bounds() -> None:
    histogram = {"5": 90, "50": 9, "inf": 1}
    assert statistics.quantile(histogram, 0.5) == 5.0
    assert statistics.quantile(histogram, 0.99) == 50.0
    assert statistics.quantile(histogram, 1.0) == statistics.OVERFLOW_MS
    assert statistics.quantile({}, 0.5) is None
    assert statistics.bucket(4.2) == "5" and statistics.bucket(99999) == "inf"


def test_the_two_proportion_test_is_scipys_chi_square_without_correction() -> None:
    a, b = (
        Samples("accuracy", [1.0] * 60 + [0.0] * 40),
        Samples("accuracy", [1.0] * 75 + [0.0] * 25),
    )
    result = statistics.test(a, b)
    pooled = 135 / 200
    z = (0.75 - 0.60) / np.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert result["test"] == "two-proportion-z"
    assert result["statistic"] == pytest.approx(z)
    assert result["p_value"] == pytest.approx(2 * stats.norm.sf(z))


def test_regressions_are_compared_with_welch() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 0.2, 80), rng.normal(1.2, 0.5, 60)
    result = statistics.test(Samples("mae", list(a)), Samples("mae", list(b)))
    assert result["test"] == "welch-t"
    assert result["p_value"] == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    metric = statistics.metric(Samples("mae", list(a)), 0.05)
    assert metric["ci"][0] < metric["value"] < metric["ci"][1]


def test_the_sample_size_needed_shrinks_with_the_difference() -> None:
    rng = np.random.default_rng(2)
    small = statistics.needed(_rates(rng, 0.80, 500), _rates(rng, 0.82, 500), 0.05, 0.8)
    large = statistics.needed(_rates(rng, 0.60, 500), _rates(rng, 0.90, 500), 0.05, 0.8)
    assert small is not None and large is not None and large < 100 < small


def test_a_better_candidate_is_decided_early_and_an_equal_one_never() -> None:
    rng = np.random.default_rng(3)
    decision, analysis = statistics.sequential(_rates(rng, 0.70, 400), _rates(rng, 0.90, 400), PLAN)
    assert decision is not None and decision["winner"] == "candidate"
    assert decision["look"] < 4  # stopped before the horizon
    assert analysis["level_per_look"] == pytest.approx(0.05 / 4)
    decision, _ = statistics.sequential(_rates(rng, 0.80, 399), _rates(rng, 0.80, 399), PLAN)
    assert decision is None  # the horizon is not reached: still running


def test_looking_often_does_not_inflate_false_positives() -> None:
    rng = np.random.default_rng(4)
    winners = 0
    for _ in range(300):
        decision, _ = statistics.sequential(_rates(rng, 0.8, 400), _rates(rng, 0.8, 400), PLAN)
        assert decision is not None  # the horizon is reached: a decision either way
        winners += decision["winner"] is not None
    # at most alpha = 5 % (binomial(300, 0.05): 99.9 % upper bound about 29)
    assert winners <= 29
