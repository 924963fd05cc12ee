"""Login sessions on the HTTP edge: the cookie, loading its actor, and CSRF.

`load_session_actor` runs before the access guard: it turns a valid session
cookie into `g.session_actor`, and refuses any unsafe request authenticated by
that cookie unless it carries the session's CSRF token (form field
`csrf_token` or header `X-CSRF-Token`). Requests with an Authorization header
are API calls: the cookie is ignored for them, so no CSRF token is needed.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app, g, request
from werkzeug.wrappers import Response

from governance.accounts.logins import LiveSession, Logins
from governance.errors import PermissionDenied
from server.extension import services
from server.security.access import is_door

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# The login form has no session yet: it carries its own double-submit token.
LOGIN_CSRF_COOKIE = "cofre_login_csrf"
LOGIN_ENDPOINT = "admin_auth.login_submit"
ARTIFACT_ATTRIBUTE = "cofre_accepts_artifacts"
F = TypeVar("F", bound=Callable[..., Any])


def logins() -> Logins:
    return services().logins


def cookie_name() -> str:
    return _host_only("cofre_session")


def login_csrf_cookie_name() -> str:
    return _host_only(LOGIN_CSRF_COOKIE)


def _host_only(name: str) -> str:
    # The __Host- prefix makes the browser insist on Secure, Path=/ and no Domain, so
    # neither a sibling subdomain nor a plain-http page can plant or overwrite the
    # cookie; it is unusable over plain http, hence the plain name in testing.
    return name if services().settings.testing else f"__Host-{name}"


def session_token() -> str | None:
    return request.cookies.get(cookie_name())


def load_session_actor() -> None:
    """before_request (registered before the guard): the actor behind the cookie."""
    g.login_session = None
    token = session_token()
    if not token or request.headers.get("Authorization") or is_door(request.endpoint):
        return  # API calls; prediction doors take API keys only
    cofre = services()
    service = logins()
    with cofre.read() as session:
        live = service.resume(session, token)
        stale = live is not None and service.needs_touch(session, live.id)
    if live is None:
        g.drop_session_cookie = True
        return
    if stale:
        with cofre.write() as session:
            service.touch(session, live.id)
    g.login_session, g.session_actor = live, live.actor
    if request.method not in SAFE_METHODS and request.endpoint != LOGIN_ENDPOINT:
        check_csrf(live)


def accepts_artifacts(view: F) -> F:
    """Mark a view whose body may be a model file (up to max_artifact_bytes).

    The CSRF check reads the form before the view runs, so the larger limit has
    to be known here rather than set inside the view.
    """
    setattr(view, ARTIFACT_ATTRIBUTE, True)
    return view


def check_csrf(live: LiveSession) -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, ARTIFACT_ATTRIBUTE, False):
        request.max_content_length = services().settings.max_artifact_bytes
    sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(sent.encode(), live.csrf_token.encode()):
        raise PermissionDenied("the form's CSRF token is missing or wrong; reload the page")


def current_csrf_token() -> str:
    live: LiveSession | None = g.get("login_session")
    return live.csrf_token if live else ""


def set_session_cookie(response: Response, token: str) -> None:
    settings = services().settings
    response.set_cookie(
        cookie_name(),
        token,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
        secure=not settings.testing,
        httponly=True,
        samesite="Strict",
    )


def clear_session_cookie(response: Response) -> None:
    settings = services().settings
    response.delete_cookie(
        cookie_name(), path="/", secure=not settings.testing, httponly=True, samesite="Strict"
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def issue_login_csrf(response: Response, token: str) -> None:
    """Set the double-submit cookie the login form's hidden field must match."""
    response.set_cookie(
        login_csrf_cookie_name(),
        token,
        path="/",  # the __Host- prefix requires it
        secure=not services().settings.testing,
        httponly=True,
        samesite="Strict",
    )


def clear_login_csrf(response: Response) -> None:
    response.delete_cookie(
        login_csrf_cookie_name(),
        path="/",
        secure=not services().settings.testing,
        httponly=True,
        samesite="Strict",
    )


def login_csrf_ok() -> bool:
    cookie = request.cookies.get(login_csrf_cookie_name(), "")
    sent = request.form.get(CSRF_FIELD, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())
