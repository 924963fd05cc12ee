"""Users and API keys (admin): create users with a role, change it, disable them; create keys
(the secret is shown once, on the page that answers the form) and revoke them."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue

from governance.accounts.roles import Role
from server.admin import forms
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_accounts")
ROLES = [role.value for role in Role]


@blueprint.get("/users")
@requires("account:manage")
def users() -> ResponseReturnValue:
    with services().read() as session:
        found = services().accounts.users(session)
        created = request.args.get("created")
        return render("admin/users.html", users=found, roles=ROLES, created=created)


@blueprint.post("/users")
@requires("account:manage")
def create_user() -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        user = cofre.accounts.create_user(
            session,
            current_actor(),
            forms.required_text(request.form, "username"),
            forms.required_text(request.form, "role"),
            request.form.get("password", ""),
        )
        name = user.username
    return redirect(url_for("admin_accounts.users", created=name), 303)


@blueprint.post("/users/<username>/disable")
@requires("account:manage")
def disable_user(username: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        cofre.accounts.disable_user(session, current_actor(), username)
    return redirect(url_for("admin_accounts.users"), 303)


@blueprint.post("/users/<username>/role")
@requires("account:manage")
def set_user_role(username: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        cofre.accounts.set_role(
            session, current_actor(), username, forms.required_text(request.form, "role")
        )
    return redirect(url_for("admin_accounts.users"), 303)


@blueprint.get("/keys")
@requires("key:manage")
def keys() -> ResponseReturnValue:
    with services().read() as session:
        found = services().accounts.keys(session)
        return render("admin/keys.html", keys=found, roles=ROLES, created=None)


@blueprint.post("/keys")
@requires("key:manage")
def create_key() -> ResponseReturnValue:
    cofre = services()
    models = [m.strip() for m in request.form.get("models", "").splitlines() if m.strip()]
    with cofre.write() as session:
        created = cofre.accounts.create_key(
            session,
            current_actor(),
            forms.required_text(request.form, "name"),
            forms.required_text(request.form, "role"),
            models or None,
            request.form.get("labels_only") == "on",
            **forms.key_limits(request.form),
        )
        found = cofre.accounts.keys(session)
    # Rendered, not redirected: the secret exists only in this response (no-store).
    return render("admin/keys.html", 201, keys=found, roles=ROLES, created=created)


@blueprint.post("/keys/<int:key_id>/revoke")
@requires("key:manage")
def revoke_key(key_id: int) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        cofre.accounts.revoke_key(session, current_actor(), str(key_id))
    return redirect(url_for("admin_accounts.keys"), 303)
