"""Deny by default: every view declares a permission (or `public`) and this guard
checks it before the view runs. A view with no declaration answers 403 to
everybody, and the role-by-route test fails until it declares one. Prediction
doors declare theirs with `door`, and are checked inside the prediction core.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from governance.accounts.actor import ANONYMOUS, Actor
from governance.accounts.roles import PERMISSIONS, allows
from governance.errors import PermissionDenied, Unauthenticated
from server.extension import services

F = TypeVar("F", bound=Callable[..., Any])
PUBLIC = "public"
ATTRIBUTE = "cofre_permission"
# A route whose URL names a model calls it `name`; keys limited to some models are
# refused on every such route for any other model, whatever the door.
MODEL_ARGUMENT = "name"
DOOR_ATTRIBUTE = "cofre_door"


def requires(permission: str) -> Callable[[F], F]:
    """Declare the permission a view needs (one of governance.accounts.roles.PERMISSIONS)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def mark(view: F) -> F:
        setattr(view, ATTRIBUTE, permission)
        return view

    return mark


def public(view: F) -> F:
    """Declare a view open to everybody (health checks, the login form)."""
    setattr(view, ATTRIBUTE, PUBLIC)
    return view


def declared_permission(app: Flask, endpoint: str | None) -> str | None:
    """The permission the endpoint's view declares, or None (denied to everybody).

    Flask's own static endpoints (`static`, `<blueprint>.static`) serve the files a
    login page needs and cannot carry a mark, so they count as declared public.
    """
    if endpoint == "static" or (endpoint or "").endswith(".static"):
        return PUBLIC if endpoint in app.view_functions else None
    view = app.view_functions.get(endpoint or "")
    return getattr(view, ATTRIBUTE, None) if view else None


def door(endpoint: str) -> Callable[[F], F]:
    """Mark a view as the prediction door `endpoint` (permission `predict`).

    A door's caller is authenticated and authorised inside the prediction core, so
    that a refused credential is audited by the core like every
    other refusal of a prediction; the guard and the session loader step aside.
    """

    def mark(view: F) -> F:
        setattr(view, DOOR_ATTRIBUTE, endpoint)
        return requires("predict")(view)

    return mark


def is_door(endpoint: str | None) -> bool:
    view = current_app.view_functions.get(endpoint or "")
    return getattr(view, DOOR_ATTRIBUTE, None) is not None


def current_actor() -> Actor:
    return g.get("actor", ANONYMOUS)


def guard() -> None:
    """before_request: authenticate, then authorise against the declared permission."""
    if request.endpoint is None:  # unknown URL: let routing answer 404
        return
    permission = declared_permission(current_app, request.endpoint)
    if permission == PUBLIC or is_door(request.endpoint):
        return
    authorised_actor(permission)


def authorised_actor(permission: str | None, model: str | None = None) -> Actor:
    """The caller, allowed `permission` (and the model this request names), or
    Unauthenticated/PermissionDenied. Sets g.actor as soon as the caller is known,
    so a refusal names who was refused."""
    g.actor = authenticate()
    if permission is None or not allows(g.actor.role, permission):
        raise PermissionDenied("your role does not allow this")
    model = model if model is not None else (request.view_args or {}).get(MODEL_ARGUMENT)
    if isinstance(model, str) and not g.actor.may_use_model(model):
        raise PermissionDenied("this API key is limited to other models")
    actor: Actor = g.actor
    return actor


def caller_may(permission: str) -> bool:
    """For a public view that shows more to some callers (/readyz): True when the
    request carries credentials whose role holds `permission`. No credentials:
    False; bad ones: Unauthenticated, as on any other route."""
    if not request.headers.get("Authorization") and g.get("session_actor") is None:
        return False
    g.actor = authenticate()
    return allows(g.actor.role, permission)


def authenticate() -> Actor:
    """The caller from a bearer API key, else from an admin login session."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("use 'Authorization: Bearer <api key>'")
        cofre = services()
        with cofre.read() as session:
            return cofre.accounts.authenticate_key(session, token.strip())
    session_actor = g.get("session_actor")
    if session_actor is not None:
        return session_actor
    raise Unauthenticated("an API key or a login session is required")
