"""Login sessions: cookie flags, renewal, logout, timeouts, throttling, CSRF, roles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.accounts.records import LoginSession
from governance.audit.records import AuditRecord
from server import create_app
from server.container import Container
from server.security.access import PUBLIC, declared_permission
from tests.conftest import services_of
from tests.unit.server.admin.conftest import PASSWORD, csrf_of, sign_in


def _kinds(cofre: Container, kind: str) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == kind).order_by(AuditRecord.seq)
        records = list(session.scalars(stmt))
        session.expunge_all()  # keep them readable after the session ends
        return records


def _session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("cofre_session")
    assert cookie is not None
    return cookie.value


def test_anonymous_is_sent_to_the_login_page(client: FlaskClient) -> None:
    response = client.get("/admin/audit/?model=iris")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/login?next=")


def test_login_sets_a_hardened_cookie_and_is_audited(
    client: FlaskClient, cofre: Container, user: Callable[[str], str]
) -> None:
    name = user("auditor")
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login", data={"username": name, "password": PASSWORD, "csrf_token": token}
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if "cofre_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # testing: plain http on 127.0.0.1
    logins = _kinds(cofre, "auth.login")
    assert [r.outcome for r in logins] == ["ok"]


def test_secure_cookie_outside_testing(
    overrides: dict[str, Any], app: Any, request: pytest.FixtureRequest
) -> None:
    production = create_app(overrides | {"testing": False})
    request.addfinalizer(services_of(production).close)
    client = production.test_client()
    page = client.get("/admin/login", base_url="https://cofre.example")
    token = csrf_of(page.text)
    client.set_cookie("__Host-cofre_login_csrf", token, path="/", domain="cofre.example")
    response = client.post(
        "/admin/login",
        data={"username": "admin", "password": "correct horse battery staple", "csrf_token": token},
        base_url="https://cofre.example",
    )
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if "cofre_session=" in c)
    assert cookie.startswith("__Host-cofre_session=") and "Secure" in cookie


def test_login_csrf_cookie_has_the_host_prefix_outside_testing(
    overrides: dict[str, Any], app: Any, request: pytest.FixtureRequest
) -> None:
    """Issue 14.6: the session cookie had the __Host- prefix, the login form's not."""
    production = create_app(overrides | {"testing": False})
    request.addfinalizer(services_of(production).close)
    client = production.test_client()
    page = client.get("/admin/login", base_url="https://cofre.example")
    cookie = next(c for c in page.headers.getlist("Set-Cookie") if "cofre_login_csrf=" in c)
    assert cookie.startswith("__Host-cofre_login_csrf=")
    assert "Secure" in cookie and "Path=/;" in cookie + ";" and "Domain" not in cookie
    response = client.post(  # the browser sends back what it was given
        "/admin/login",
        data={
            "username": "admin",
            "password": "correct horse battery staple",
            "csrf_token": csrf_of(page.text),
        },
        base_url="https://cofre.example",
    )
    assert response.status_code == 303
    assert client.get_cookie("__Host-cofre_login_csrf", domain="cofre.example") is None


def test_login_without_its_form_token_is_refused(
    client: FlaskClient, user: Callable[[str], str]
) -> None:
    name = user("auditor")
    response = client.post("/admin/login", data={"username": name, "password": PASSWORD})
    assert response.status_code == 403
    assert client.get_cookie("cofre_session") is None


def test_session_id_is_renewed_at_login(
    client: FlaskClient, user: Callable[[str], str], cofre: Container
) -> None:
    name = user("auditor")
    sign_in(client, name)
    first = _session_cookie(client)
    # Sign in again while the browser still holds the first cookie.
    client.set_cookie("cofre_login_csrf", "token", path="/")
    response = client.post(
        "/admin/login", data={"username": name, "password": PASSWORD, "csrf_token": "token"}
    )
    assert response.status_code == 303
    second = _session_cookie(client)
    assert first != second
    client.set_cookie("cofre_session", first)
    assert client.get("/admin/").status_code == 303  # the old id no longer works


def test_logout_invalidates_the_session(
    client: FlaskClient, user: Callable[[str], str], cofre: Container
) -> None:
    csrf = sign_in(client, user("auditor"))
    old = _session_cookie(client)
    response = client.post("/admin/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    client.set_cookie("cofre_session", old)  # replay the old cookie
    assert client.get("/admin/audit/").status_code == 303
    assert [r.outcome for r in _kinds(cofre, "auth.logout")] == ["ok"]


def test_idle_and_absolute_timeouts(
    client: FlaskClient, user: Callable[[str], str], cofre: Container
) -> None:
    sign_in(client, user("auditor"))
    assert client.get("/admin/").status_code == 200
    with cofre.write() as session:
        row = session.scalars(select(LoginSession)).one()
        row.last_seen_at -= timedelta(minutes=cofre.settings.session_idle_minutes + 1)
    assert client.get("/admin/").status_code == 303
    sign_in(client, "auditor-user")
    with cofre.write() as session:
        shift = timedelta(hours=cofre.settings.session_absolute_hours, minutes=1)
        for row in session.scalars(select(LoginSession)):
            row.created_at -= shift
    assert client.get("/admin/").status_code == 303


def test_failed_logins_are_audited_and_throttled_across_workers(
    client: FlaskClient,
    user: Callable[[str], str],
    cofre: Container,
    overrides: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    name = user("auditor")
    for _ in range(5):
        token = csrf_of(client.get("/admin/login").text)
        response = client.post(
            "/admin/login", data={"username": name, "password": "wrong", "csrf_token": token}
        )
        assert response.status_code == 401
    # A second app on the same database stands for another Gunicorn worker.
    other_app = create_app(overrides)
    request.addfinalizer(services_of(other_app).close)
    other = other_app.test_client()
    token = csrf_of(other.get("/admin/login").text)
    response = other.post(
        "/admin/login", data={"username": name, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 429
    denied = _kinds(cofre, "auth.login")
    assert [r.outcome for r in denied] == ["denied"] * 6
    assert denied[0].details == {"username": name, "reason": "credentials"}
    assert denied[-1].details == {"username": name, "reason": "throttled"}


def test_unknown_usernames_are_not_written_to_the_log(
    client: FlaskClient, cofre: Container
) -> None:
    token = csrf_of(client.get("/admin/login").text)
    client.post(
        "/admin/login",
        data={"username": "my-secret-password", "password": "x", "csrf_token": token},
    )
    (record,) = _kinds(cofre, "auth.login")
    assert record.details == {"username": None, "reason": "credentials"}


def test_unsafe_request_without_csrf_token_is_refused(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    csrf = signed_in("auditor")
    assert client.post("/admin/audit/verify").status_code == 403
    assert client.post("/admin/audit/verify", data={"csrf_token": "nope"}).status_code == 403
    assert not _kinds(cofre, "audit.verified")
    assert client.post("/admin/audit/verify", data={"csrf_token": csrf}).status_code == 303
    assert len(_kinds(cofre, "audit.verified")) == 1


def test_predictor_key_and_predictor_user_are_refused(
    client: FlaskClient, api_key: Callable[..., dict[str, str]], user: Callable[[str], str]
) -> None:
    headers = api_key("predictor")
    for url in ("/admin/", "/admin/audit/", "/admin/models/", "/admin/users", "/admin/traffic"):
        assert client.get(url, headers=headers).status_code == 403
    name = user("predictor")
    token = csrf_of(client.get("/admin/login").text)
    response = client.post(
        "/admin/login", data={"username": name, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 401
    assert "no access" in response.text


def test_roles_are_enforced_on_the_server(
    client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    csrf = signed_in("publisher")
    assert client.get("/admin/audit/").status_code == 403
    assert client.post("/admin/audit/export", data={"csrf_token": csrf}).status_code == 403
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/models/").status_code == 200


def test_auditor_reads_models_but_cannot_move_aliases(
    client: FlaskClient, signed_in: Callable[[str], str]
) -> None:
    csrf = signed_in("auditor")
    assert client.get("/admin/models/").status_code == 200
    response = client.post(
        "/admin/models/iris/promote", data={"csrf_token": csrf, "alias": "production"}
    )
    assert response.status_code == 403
    assert client.get("/admin/keys").status_code == 403


def test_every_admin_route_declares_a_permission(app: Any) -> None:
    public = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin"):
            permission = declared_permission(app, rule.endpoint)
            assert permission is not None, rule.rule
            if permission == PUBLIC:
                public.add(rule.endpoint)
    assert public == {
        "admin_auth.login_form",
        "admin_auth.login_submit",
        "admin_auth.logout",
        "admin_assets.static",
    }


def test_pages_carry_a_strict_content_security_policy(client: FlaskClient) -> None:
    response = client.get("/admin/login")
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
