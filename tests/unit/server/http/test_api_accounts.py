"""Users and API keys over JSON: admin only, secrets shown once, revocation is immediate."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select

from governance.accounts.records import ApiKey, User
from server.container import Container

Headers = dict[str, str]


def test_users_create_list_disable(
    client: FlaskClient, cofre: Container, api_key: Callable[..., Headers]
) -> None:
    admin = api_key("admin")
    created = client.post(
        "/api/v1/users",
        json={"username": "ana", "role": "auditor", "password": "a long enough password"},
        headers=admin,
    )
    assert created.status_code == 201
    assert created.json["username"] == "ana" and created.json["role"] == "auditor"
    assert "password" not in created.get_data(as_text=True)
    listed = client.get("/api/v1/users", headers=admin).json["users"]
    assert [(u["username"], u["disabled"]) for u in listed] == [("admin", False), ("ana", False)]
    disabled = client.post("/api/v1/users/ana/disable", headers=admin)
    assert disabled.json["disabled"] is True
    with cofre.read() as session:
        user = session.scalars(select(User).where(User.username == "ana")).one()
        assert user.password_hash.startswith("$argon2id$")
    assert client.post("/api/v1/users/nobody/disable", headers=admin).status_code == 404
    duplicate = client.post(
        "/api/v1/users",
        json={"username": "ana", "role": "auditor", "password": "a long enough password"},
        headers=admin,
    )
    assert duplicate.status_code == 409


def test_key_secret_is_shown_once_and_stored_as_a_hash(
    client: FlaskClient, cofre: Container, api_key: Callable[..., Headers]
) -> None:
    admin = api_key("admin")
    created = client.post(
        "/api/v1/keys", json={"name": "svc", "role": "predictor", "models": ["iris"]}, headers=admin
    )
    assert created.status_code == 201
    secret = created.json["secret"]
    prefix = created.json["prefix"]
    assert secret.startswith(f"cofre_{prefix}_") and created.json["models"] == ["iris"]
    listed = client.get("/api/v1/keys", headers=admin)
    assert secret not in listed.get_data(as_text=True)
    assert "secret" not in listed.json["keys"][0]
    assert prefix in [k["prefix"] for k in listed.json["keys"]]
    with cofre.read() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        assert secret.split("_")[-1] not in (row.secret_hash, row.name, row.prefix)
        assert len(row.secret_hash) == 64


def test_a_revoked_key_is_refused_at_once(
    client: FlaskClient, api_key: Callable[..., Headers]
) -> None:
    admin = api_key("admin")
    created = client.post("/api/v1/keys", json={"name": "p", "role": "publisher"}, headers=admin)
    headers = {"Authorization": f"Bearer {created.json['secret']}"}
    assert client.get("/api/v1/models", headers=headers).status_code == 200
    revoked = client.delete(f"/api/v1/keys/{created.json['prefix']}", headers=admin)
    assert revoked.json["revoked_at"] is not None
    refused = client.get("/api/v1/models", headers=headers)
    assert refused.status_code == 401
    assert refused.json["detail"] == "this API key was revoked"
    assert client.delete(f"/api/v1/keys/{created.json['id']}", headers=admin).status_code == 409


def test_key_input_is_validated(client: FlaskClient, api_key: Callable[..., Headers]) -> None:
    admin = api_key("admin")
    for body, field in (
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "x", "role": "predictor", "models": "iris"}, "models"),
        ({"role": "predictor"}, "name"),
    ):
        response = client.post("/api/v1/keys", json=body, headers=admin)
        assert response.status_code == 422, body
        assert response.json["errors"][0]["field"] == field


def test_only_admins_manage_accounts(client: FlaskClient, api_key: Callable[..., Headers]) -> None:
    for role in ("publisher", "predictor", "auditor"):
        headers = api_key(role)
        assert client.get("/api/v1/users", headers=headers).status_code == 403
        assert client.post("/api/v1/keys", json={}, headers=headers).status_code == 403


def test_a_users_role_changes_over_json_and_an_admin_always_remains(
    client: FlaskClient, api_key: Callable[..., Headers]
) -> None:
    admin = api_key("admin")
    client.post(
        "/api/v1/users",
        json={"username": "ana", "role": "auditor", "password": "a long enough password"},
        headers=admin,
    )
    changed = client.put("/api/v1/users/ana/role", json={"role": "publisher"}, headers=admin)
    assert changed.status_code == 200 and changed.json["role"] == "publisher"
    unknown = client.put("/api/v1/users/ana/role", json={"role": "root"}, headers=admin)
    assert unknown.status_code == 422 and unknown.json["errors"][0]["field"] == "role"
    assert "root" not in unknown.get_data(as_text=True)  # the input is not echoed
    missing = client.put("/api/v1/users/nobody/role", json={"role": "admin"}, headers=admin)
    assert missing.status_code == 404
    # The first admin is the only active one: it can neither lose the role nor be disabled.
    last = client.put("/api/v1/users/admin/role", json={"role": "auditor"}, headers=admin)
    assert last.status_code == 409 and "last active admin" in last.json["detail"]
    assert client.post("/api/v1/users/admin/disable", headers=admin).status_code == 409
    client.put("/api/v1/users/ana/role", json={"role": "admin"}, headers=admin)
    demoted = client.put("/api/v1/users/admin/role", json={"role": "auditor"}, headers=admin)
    assert demoted.status_code == 200 and demoted.json["role"] == "auditor"
    publisher = api_key("publisher")
    refused = client.put("/api/v1/users/ana/role", json={"role": "auditor"}, headers=publisher)
    assert refused.status_code == 403
