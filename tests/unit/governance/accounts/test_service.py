"""Accounts: argon2id passwords, API keys kept only as hashes, revocation, scopes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.accounts.records import ApiKey, User
from governance.accounts.service import hash_secret
from governance.audit.records import AuditRecord
from governance.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from server.container import Container

PASSWORD = "a perfectly long password"


def test_passwords_are_argon2id_hashes(cofre: Container) -> None:
    with cofre.write() as session:
        cofre.accounts.create_user(session, SYSTEM, "ana", "auditor", PASSWORD)
    with cofre.read() as session:
        user = session.scalars(select(User).where(User.username == "ana")).one()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        actor = cofre.accounts.authenticate_user(session, "ana", PASSWORD)
        assert (actor.type, actor.role, actor.name) == ("user", "auditor", "ana")
        for name, password in (("ana", PASSWORD + "x"), ("nobody", PASSWORD)):
            with pytest.raises(Unauthenticated, match="unknown user or wrong password"):
                cofre.accounts.authenticate_user(session, name, password)


def test_a_disabled_user_cannot_authenticate(cofre: Container) -> None:
    with cofre.write() as session:
        cofre.accounts.create_user(session, SYSTEM, "bob", "publisher", PASSWORD)
        cofre.accounts.disable_user(session, SYSTEM, "bob")
    with cofre.read() as session, pytest.raises(Unauthenticated):
        cofre.accounts.authenticate_user(session, "bob", PASSWORD)


@pytest.mark.parametrize(
    ("username", "role", "password", "field"),
    [
        ("ok-name", "admin", "short", "password"),
        ("bad name", "admin", PASSWORD, "username"),
        ("ok-name", "superuser", PASSWORD, "role"),
    ],
)
def test_user_input_is_validated(
    cofre: Container, username: str, role: str, password: str, field: str
) -> None:
    with cofre.write() as session, pytest.raises(InvalidInput) as refused:
        cofre.accounts.create_user(session, SYSTEM, username, role, password)
    assert [e.field for e in refused.value.errors] == [field]
    assert "superuser" not in refused.value.detail  # the rejected value is not echoed


def test_usernames_are_unique(cofre: Container) -> None:
    with cofre.write() as session, pytest.raises(Conflict):
        cofre.accounts.create_user(session, SYSTEM, "admin", "admin", PASSWORD)


def test_an_api_key_is_stored_only_as_a_hash(cofre: Container) -> None:
    with cofre.write() as session:
        created = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor")
    secret = created.secret
    assert secret.startswith(f"cofre_{created.key.prefix}_")
    with cofre.read() as session:
        key = session.scalars(select(ApiKey)).one()
        assert key.secret_hash == hash_secret(secret)
        assert secret.split("_")[-1] not in repr(
            [getattr(key, c.key) for c in ApiKey.__table__.columns]
        )
        actor = cofre.accounts.authenticate_key(session, secret)
    assert (actor.type, actor.role, actor.name) == ("key", "predictor", f"key:{key.prefix}")
    assert actor.models is None


def test_keys_can_be_limited_to_models(cofre: Container) -> None:
    with cofre.write() as session:
        created = cofre.accounts.create_key(
            session, SYSTEM, "svc", "predictor", ["iris", "cancer", "iris"]
        )
    with cofre.read() as session:
        actor = cofre.accounts.authenticate_key(session, created.secret)
    assert actor.models == ("cancer", "iris")
    assert actor.may_use_model("iris") and not actor.may_use_model("diabetes")


def test_revoked_wrong_and_malformed_keys_are_refused(cofre: Container) -> None:
    with cofre.write() as session:
        created = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor")
    prefix = created.key.prefix
    forged = created.secret[:-4] + ("AAAA" if not created.secret.endswith("AAAA") else "BBBB")
    with cofre.read() as session:
        with pytest.raises(Unauthenticated, match="unknown API key"):
            cofre.accounts.authenticate_key(session, forged)
        with pytest.raises(Unauthenticated, match="malformed"):
            cofre.accounts.authenticate_key(session, "not-a-key")
    with cofre.write() as session:
        cofre.accounts.revoke_key(session, SYSTEM, prefix)
    with cofre.read() as session, pytest.raises(Unauthenticated, match="revoked"):
        cofre.accounts.authenticate_key(session, created.secret)
    with cofre.write() as session, pytest.raises(Conflict, match="already revoked"):
        cofre.accounts.revoke_key(session, SYSTEM, str(created.key.id))
    with cofre.write() as session, pytest.raises(NotFound):
        cofre.accounts.revoke_key(session, SYSTEM, "99999")


def test_a_key_whose_prefix_is_all_digits_is_revoked_by_prefix(
    cofre: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    import governance.accounts.service as service

    with cofre.write() as session:
        by_id = cofre.accounts.create_key(session, SYSTEM, "by-id", "predictor")
    monkeypatch.setattr(service.secrets, "token_hex", lambda n: "37605208")
    with cofre.write() as session:
        digits = cofre.accounts.create_key(session, SYSTEM, "digits", "predictor")
    with cofre.write() as session:
        assert cofre.accounts.revoke_key(session, SYSTEM, "37605208").id == digits.key.id
        assert cofre.accounts.revoke_key(session, SYSTEM, str(by_id.key.id)).id == by_id.key.id


def test_a_role_change_is_audited_and_not_ones_own(cofre: Container) -> None:
    with cofre.write() as session:
        cofre.accounts.create_user(session, SYSTEM, "ana", "auditor", PASSWORD)
    with cofre.write() as session:
        assert cofre.accounts.set_role(session, SYSTEM, "ana", "admin").role == "admin"
    with cofre.read() as session:
        ana = cofre.accounts.authenticate_user(session, "ana", PASSWORD)
        assert ana.role == "admin"
        last = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
        assert last is not None and last.kind == "user.role_changed"
        assert last.details == {"user": "ana", "from": "auditor", "to": "admin"}
        before = cofre.audit.count(session)
    with pytest.raises(Conflict, match="your own role"), cofre.write() as session:
        cofre.accounts.set_role(session, ana, "ana", "auditor")
    with cofre.write() as session:  # no change, no event
        cofre.accounts.set_role(session, SYSTEM, "ana", "admin")
    with cofre.read() as session:
        assert cofre.audit.count(session) == before


def test_the_last_active_admin_keeps_the_role(cofre: Container) -> None:
    with cofre.read() as session:
        admins = [u.username for u in cofre.accounts.users(session) if u.role == "admin"]
    assert admins == ["admin"]
    with pytest.raises(Conflict, match="last active admin"), cofre.write() as session:
        cofre.accounts.set_role(session, SYSTEM, "admin", "auditor")
    with pytest.raises(Conflict, match="last active admin"), cofre.write() as session:
        cofre.accounts.disable_user(session, SYSTEM, "admin")
    with cofre.write() as session:
        cofre.accounts.create_user(session, SYSTEM, "bea", "admin", PASSWORD)
    with cofre.write() as session:
        cofre.accounts.disable_user(session, SYSTEM, "bea")  # a second admin, but disabled
    with pytest.raises(Conflict, match="last active admin"), cofre.write() as session:
        cofre.accounts.set_role(session, SYSTEM, "admin", "auditor")
    with pytest.raises(InvalidInput, match="unknown role"), cofre.write() as session:
        cofre.accounts.set_role(session, SYSTEM, "bea", "root")
