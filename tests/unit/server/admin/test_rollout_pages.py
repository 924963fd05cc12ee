"""The Rollouts pages: running rollouts with live figures (self-reloading), a model's
rollout in detail, abort and promote through forms with CSRF; publishers only act."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from governance.rollouts.service import RolloutRequest
from server.container import Container
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish


def _rollout(cofre: Container, name: str = "iris") -> None:
    publish(cofre, name, aliases=["production"])
    publish(cofre, name, artifact=iris_classifier_v2())
    with cofre.write() as session:
        request = RolloutRequest(name, 2, "canary", percent=25, guardrails=("error_rate<0.05",))
        cofre.rollouts.start(session, SYSTEM, request)


def test_the_list_shows_running_rollouts_and_reloads_itself(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    _rollout(cofre)
    signed_in("publisher")
    page = client.get("/admin/rollouts")
    assert page.status_code == 200
    assert 'http-equiv="refresh"' in page.text
    assert "canary v2 against v1" in page.text and "error_rate&lt;0.05" in page.text
    assert 'href="/admin/rollouts"' in client.get("/admin/").text


def test_abort_and_promote_through_the_forms(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    _rollout(cofre)
    csrf = signed_in("publisher")
    detail = client.get("/admin/rollouts/iris")
    assert detail.status_code == 200 and "Abort" in detail.text and "Ground truth" in detail.text
    refused = client.post("/admin/rollouts/iris/abort", data={"reason": "x"})
    assert refused.status_code in (400, 403)  # no CSRF token
    done = client.post(
        "/admin/rollouts/iris/abort", data={"csrf_token": csrf, "reason": "seen enough"}
    )
    assert done.status_code == 303
    ended = client.get(done.headers["Location"]).text
    assert "aborted" in ended and "seen enough" in ended and "Abort:" not in ended
    with cofre.write() as session:
        cofre.rollouts.start(session, SYSTEM, RolloutRequest("iris", 2, "blue-green"))
    assert client.post("/admin/rollouts/iris/promote", data={"csrf_token": csrf}).status_code == 303
    with cofre.read() as session:
        assert cofre.registry.resolve(session, "iris").version == 2


def test_an_auditor_sees_no_rollout_pages(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    _rollout(cofre)
    signed_in("auditor")
    assert client.get("/admin/rollouts").status_code == 403
