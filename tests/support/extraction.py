"""Traffic for the extraction detector's tests: a one-feature sweep, rows like the
reference data, and a published `risk` model (three normal features, with a
reference profile) called with an API key through the prediction core."""

from __future__ import annotations

import numpy as np

from governance.accounts.actor import SYSTEM, Actor
from governance.accounts.service import key_actor
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD
from tests.support.monitoring import classifier, normal_frame, reference_csv
from tests.support.scoring import score

BASE = {"x0": 0.3, "x1": -0.2, "x2": 1.1}


def sweep_rows(steps: int = 60, feature: str = "x1") -> list[dict[str, float]]:
    """A base row with one feature walked across its range: the textbook probe."""
    return [BASE | {feature: float(v)} for v in np.linspace(-3, 3, steps)]


def ordinary_rows(count: int = 60, seed: int = 7) -> list[dict[str, float]]:
    """Rows drawn like the reference data (other people, not a probe)."""
    records: list[dict[str, float]] = normal_frame(count, seed=seed).to_dict("records")
    return records


def publish_risk(cofre: Container) -> None:
    request = PublishRequest(
        name="risk",
        artifact=classifier(),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(reference_csv(), "csv"),
    )
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)


def key_of(cofre: Container, name: str = "client") -> Actor:
    with cofre.write() as session:
        return key_actor(cofre.accounts.create_key(session, SYSTEM, name, "predictor").key)


def send(cofre: Container, actor: Actor, rows: list[dict[str, float]], per: int = 10) -> None:
    """The rows to `risk`, `per` rows a request."""
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        score(cofre, [None] * len(chunk), name="risk", rows=chunk, actor=actor)
