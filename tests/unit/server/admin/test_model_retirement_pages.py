"""The model page lists each deprecated or retired version with its sunset, reason,
successor and the keys still calling it (whom to warn), the shredding of a retired
artifact, and the lifecycle history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from governance.clock import utcnow
from server.container import Container
from tests.support import clock
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish
from tests.support.scoring import score

HOSTILE_REASON = "<script>alert(1)</script> superseded"


def test_the_model_page_shows_deprecation_callers_retirement_and_history(
    client: FlaskClient,
    signed_in: Callable[[str], str],
    cofre: Container,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    publish(cofre, aliases=["production"])
    publish(cofre, artifact=iris_classifier_v2())
    publish(cofre, artifact=iris_classifier_v2(), allow_duplicate=True)
    fake = clock.install(monkeypatch, utcnow() + timedelta(seconds=1))
    with cofre.write() as session:
        made = cofre.accounts.create_key(session, SYSTEM, "billing-svc", "predictor")
        key = cofre.accounts.authenticate_key(session, made.secret)
        sunset = utcnow() + timedelta(days=30)
        cofre.retirements.deprecate(session, SYSTEM, "iris", 2, sunset, HOSTILE_REASON)
        cofre.retirements.retire(session, SYSTEM, "iris", 3)
    fake.advance(seconds=1)
    score(cofre, ["a"], version=2, actor=key)
    score(cofre, ["b"], version=2, actor=key)
    signed_in("auditor")
    page = client.get("/admin/models/iris").text
    assert 'id="ending-v2"' in page and 'id="ending-v3"' in page
    assert (
        "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; superseded" in page
    )
    v2 = page[page.index('id="ending-v2"') :]
    assert "Successor: v1." in v2
    assert f"<td>billing-svc</td><td>{key.name.removeprefix('key:')}</td><td>2</td>" in v2
    v3 = page[page.index('id="ending-v3"') : page.index('id="ending-v2"')]
    assert "Retired on" in v3 and "artifact kept (encrypted) until" in v3
    with cofre.write() as session:
        days = cofre.registry.resolve(session, "iris", version=3).retention_days
    fake.advance(days=days + 1)
    with cofre.write() as session:
        cofre.retention.run(session, SYSTEM)
    page = client.get("/admin/models/iris").text
    assert "artifact shredded on" in page
    history = page[page.index("Lifecycle history") :]
    for step in ("shredded", "retired", "deprecated", "published", "alias set"):
        assert f"<td>{step}</td>" in history
