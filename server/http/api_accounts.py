"""JSON endpoints for users, API keys and master-key rotation (admin only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from governance.accounts.budgets import UNSET, Limit
from governance.errors import FieldError, InvalidInput
from governance.operations.rotation import rotate_master_key
from server import representations as rep
from server.extension import services
from server.http.bodies import json_fields, required_text
from server.security.access import current_actor, requires

blueprint = Blueprint("api_accounts", __name__, url_prefix="/api/v1")


@blueprint.get("/users")
@requires("account:manage")
def list_users() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        return jsonify(users=[rep.user_summary(u) for u in cofre.accounts.users(session)])


@blueprint.post("/users")
@requires("account:manage")
def create_user() -> ResponseReturnValue:
    cofre = services()
    data = json_fields(("username", "role", "password"))
    with cofre.write() as session:
        user = cofre.accounts.create_user(
            session,
            current_actor(),
            required_text(data, "username"),
            required_text(data, "role"),
            required_text(data, "password"),
        )
        return jsonify(rep.user_summary(user)), 201


@blueprint.post("/users/<username>/disable")
@requires("account:manage")
def disable_user(username: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        return jsonify(
            rep.user_summary(cofre.accounts.disable_user(session, current_actor(), username))
        )


@blueprint.put("/users/<username>/role")
@requires("account:manage")
def set_user_role(username: str) -> ResponseReturnValue:
    cofre = services()
    role = required_text(json_fields(("role",)), "role")
    with cofre.write() as session:
        user = cofre.accounts.set_role(session, current_actor(), username, role)
        return jsonify(rep.user_summary(user))


@blueprint.get("/keys")
@requires("key:manage")
def list_keys() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        return jsonify(keys=[rep.key_summary(k) for k in cofre.accounts.keys(session)])


@blueprint.post("/keys")
@requires("key:manage")
def create_key() -> ResponseReturnValue:
    cofre = services()
    data = json_fields(("name", "role"), ("models", "labels_only", *LIMITS))
    models = data.get("models")
    if models is not None and not (
        isinstance(models, list) and all(isinstance(m, str) for m in models)
    ):
        raise InvalidInput(
            "models must be a list of names", [FieldError("models", "list of names")]
        )
    with cofre.write() as session:
        created = cofre.accounts.create_key(
            session,
            current_actor(),
            required_text(data, "name"),
            required_text(data, "role"),
            models,
            _flag(data, "labels_only"),
            **_limits(data),
        )
        return jsonify(rep.key_summary(created.key) | {"secret": created.secret}), 201


@blueprint.put("/keys/<keyref:key_ref>/limits")
@requires("key:manage")
def limit_key(key_ref: str) -> ResponseReturnValue:
    """Change a key's budget or output precision; a field left out stays, null lifts it."""
    cofre = services()
    limits = _limits(json_fields((), LIMITS))
    with cofre.write() as session:
        key = cofre.accounts.limit_key(session, current_actor(), key_ref, **limits)
        return jsonify(rep.key_summary(key))


@blueprint.delete("/keys/<keyref:key_ref>")
@requires("key:manage")
def revoke_key(key_ref: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        return jsonify(
            rep.key_summary(cofre.accounts.revoke_key(session, current_actor(), key_ref))
        )


@blueprint.post("/keys/rotate-master")
@requires("key:rotate")
def rotate_master() -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        result = rotate_master_key(session, cofre.keyring, cofre.audit, current_actor())
        return jsonify(old_kek=result.old_kek, new_kek=result.new_kek, rewrapped=result.rewrapped)


LIMITS = ("rate", "rows_per_day", "precision")


def _limits(data: dict[str, Any]) -> dict[str, Limit]:
    """The limits the body gives (the service checks them); absent ones stay UNSET."""
    return {name: _integral(data[name]) if name in data else UNSET for name in LIMITS}


def _integral(value: Any) -> Any:
    """3.0 is the integer 3, as JSON Schema (and the document) say."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _flag(data: dict[str, object], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false", [FieldError(name, "a boolean")])
    return value
