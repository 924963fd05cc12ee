"""Model pages: listing, escaping of hostile names, promote/rollback, upload."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from io import BytesIO
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from governance.registry.service import ModelCard, PublishRequest
from server.container import Container
from tests.support.models import CARD, iris_classifier, iris_classifier_v2
from tests.unit.server.admin.conftest import sign_in

HOSTILE = "team/<script>alert(1)</script>"


def _publish(cofre: Container, name: str, *artifacts: bytes, card: ModelCard = CARD) -> None:
    with cofre.write() as session:
        for artifact in artifacts:
            cofre.registry.publish(
                session, SYSTEM, PublishRequest(name=name, artifact=artifact, card=card)
            )
        cofre.registry.set_alias(session, SYSTEM, name, 1, "production")


def _rename(cofre: Container, old: str, new: str) -> None:
    """The registry refuses such names today; the pages must not rely on that."""
    with cofre.write() as session:
        cofre.registry.model(session, old).name = new


def test_hostile_model_name_is_escaped(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    _publish(cofre, "hostile", iris_classifier(), card=replace(CARD, purpose=HOSTILE))
    _rename(cofre, "hostile", HOSTILE)
    signed_in("auditor")
    for url in (
        "/admin/models/",
        f"/admin/models/{HOSTILE}",
        f"/admin/models/{HOSTILE}/versions/1",
        "/admin/",
    ):
        page = client.get(url).text
        assert "<script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_promote_and_rollback_through_confirmation(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    _publish(cofre, "iris", iris_classifier(), iris_classifier_v2())
    csrf = signed_in("publisher")
    confirm = client.get("/admin/models/iris/promote?alias=production&version=2")
    assert confirm.status_code == 200 and "Yes, promote" in confirm.text
    with cofre.read() as session:  # nothing moves before the confirmation
        assert cofre.registry.resolve(session, "iris").version == 1
    response = client.post(
        "/admin/models/iris/promote",
        data={"csrf_token": csrf, "alias": "production", "version": "2"},
    )
    assert response.status_code == 303
    with cofre.read() as session:
        assert cofre.registry.resolve(session, "iris").version == 2
    client.post("/admin/models/iris/rollback", data={"csrf_token": csrf, "alias": "production"})
    with cofre.read() as session:
        assert cofre.registry.resolve(session, "iris").version == 1
    history = client.get("/admin/models/iris").text
    assert "rollback" in history


def test_upload_a_version_with_its_card(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    csrf = signed_in("publisher")
    response = client.post(
        "/admin/publish",
        data={
            "csrf_token": csrf,
            "name": "flowers.iris",
            "purpose": "sorting flowers",
            "legal_basis": "consent",
            "decision_mode": "automated",
            "alias": "staging",
            "file": (BytesIO(iris_classifier()), "iris.skops"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/models/flowers.iris/versions/1")
    page = client.get(response.headers["Location"]).text
    assert "sorting flowers" in page and "staging" in page
    assert "<dt>Runtime</dt><dd>onnx (proven equal)</dd>" in page and "label mismatches" in page


def test_upload_on_sklearn_by_choice_says_so(
    client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    csrf = signed_in("publisher")
    assert 'name="runtime"' in client.get("/admin/publish").text
    response = client.post(
        "/admin/publish",
        data={
            "csrf_token": csrf,
            "name": "iris",
            "purpose": "sorting flowers",
            "legal_basis": "consent",
            "runtime": "sklearn",
            "file": (BytesIO(iris_classifier()), "iris.skops"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert "<dt>Runtime</dt><dd>sklearn (the publisher chose scikit-learn)</dd>" in page


def test_upload_refuses_a_pickle_with_a_page(
    client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    csrf = signed_in("publisher")
    response = client.post(
        "/admin/publish",
        data={
            "csrf_token": csrf,
            "name": "evil",
            "purpose": "p",
            "legal_basis": "b",
            "file": (BytesIO(b"\x80\x04not a skops file"), "evil.pkl"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "text/html" in response.content_type


def test_users_and_keys_pages(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    csrf = signed_in("admin")
    response = client.post(
        "/admin/users",
        data={"csrf_token": csrf, "username": "dpo", "role": "auditor", "password": "x" * 12},
    )
    assert response.status_code == 303
    assert "dpo" in client.get("/admin/users").text
    created = client.post(
        "/admin/keys", data={"csrf_token": csrf, "name": "svc", "role": "predictor"}
    )
    assert created.status_code == 201 and 'id="new-secret">cofre_' in created.text
    with cofre.read() as session:
        key_id = cofre.accounts.keys(session)[0].id
    client.post(f"/admin/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert "revoked" in client.get("/admin/keys").text
    assert (
        "cofre_"
        not in client.get("/admin/keys").text.split("<h2>Create a key")[0].split("<table")[0]
    )


def test_an_admin_changes_a_role_and_it_applies_at_the_next_click(
    app: Flask, client: FlaskClient, signed_in: Callable[[str], str], user: Callable[[str], str]
) -> None:
    csrf = signed_in("admin")
    other = app.test_client()
    sign_in(other, user("publisher"))
    assert other.get("/admin/users").status_code == 403
    page = client.get("/admin/users").text
    assert 'action="/admin/users/publisher-user/role"' in page
    assert 'action="/admin/users/admin-user/role"' not in page  # not one's own
    without_csrf = client.post("/admin/users/publisher-user/role", data={"role": "admin"})
    assert without_csrf.status_code == 403
    changed = client.post(
        "/admin/users/publisher-user/role", data={"csrf_token": csrf, "role": "admin"}
    )
    assert changed.status_code == 303
    assert other.get("/admin/users").status_code == 200  # same login session, new role


def test_a_model_scoped_key_cannot_publish_or_promote_other_models_through_the_pages(
    client: FlaskClient, cofre: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    """Issue 14.1: the publish form answered 303 to a key limited to another model."""
    _publish(cofre, "other", iris_classifier())
    scoped = api_key("publisher", models=["iris"])
    form = {
        "name": "other",
        "purpose": "p",
        "legal_basis": "b",
        "decision_mode": "automated",
        "alias": "production",
        "file": (BytesIO(iris_classifier_v2()), "model.skops"),
    }
    published = client.post("/admin/publish", data=form, headers=scoped)
    assert published.status_code == 403
    promoted = client.post(
        "/admin/models/other/promote", data={"alias": "staging", "version": "1"}, headers=scoped
    )
    assert promoted.status_code == 403
    with cofre.read() as session:
        model = cofre.registry.model(session, "other")
        assert [v.version for v in model.versions] == [1]
        assert [a.name for a in model.aliases] == ["production"]


def test_a_model_scoped_publisher_sees_only_its_models_traffic(
    client: FlaskClient, cofre: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    """Issue 14.3: the dashboard, traffic and model pages showed every model."""
    from governance.audit.service import AuditEvent

    for name in ("iris", "concealed-model"):
        _publish(cofre, name, iris_classifier())
        with cofre.write() as session:
            cofre.audit.append(
                session,
                AuditEvent(
                    kind="prediction",
                    actor=SYSTEM,
                    status=200,
                    endpoint="native",
                    model_name=name,
                    model_version=1,
                    details={"rows": 1, "latency_ms": 3},
                ),
            )
    with cofre.read() as session:  # the pages read the monitoring job's traffic rollups
        cofre.monitoring.run_due(session, cofre.monitoring_window)
    scoped = api_key("publisher", models=["iris"])
    for url in ("/admin/traffic", "/admin/", "/admin/models/"):
        page = client.get(url, headers=scoped)
        assert page.status_code == 200, url
        assert "iris" in page.text and "concealed-model" not in page.text, url
    assert "concealed-model" in client.get("/admin/traffic", headers=api_key("publisher")).text


def test_the_upload_form_refuses_a_duplicate_unless_ticked(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    """Issue 14.19."""
    _publish(cofre, "iris", iris_classifier())
    csrf = signed_in("publisher")
    assert 'name="allow_duplicate"' in client.get("/admin/publish").text

    def upload(**extra: str) -> Any:
        form = {
            "csrf_token": csrf,
            "name": "iris",
            "purpose": "p",
            "legal_basis": "b",
            "decision_mode": "automated",
            "file": (BytesIO(iris_classifier()), "model.skops"),
        }
        return client.post("/admin/publish", data=form | extra)

    refused = upload()
    assert refused.status_code == 409 and "version 1" in refused.text
    assert upload(allow_duplicate="on").status_code == 303
