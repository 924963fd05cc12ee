"""Signing in and out of the admin pages."""

from __future__ import annotations

from flask import g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from governance.accounts.logins import LoginRefused
from server.admin.pages import admin_blueprint
from server.extension import services
from server.security import sessions
from server.security.access import public

blueprint = admin_blueprint("admin_auth")
# What the sign-in form says for each refusal (governance.accounts.logins.LoginRefused).
REFUSALS = {
    "credentials": "Unknown user or wrong password.",
    "throttled": "Too many failed sign-ins. Wait a few minutes and try again.",
    "no-access": "This account has no access to the admin pages.",
}


@blueprint.get("/login")
@public
def login_form() -> ResponseReturnValue:
    if g.get("login_session"):
        return redirect(_next_path(), 303)
    return _login_page(200, "")


@blueprint.post("/login")
@public
def login_submit() -> ResponseReturnValue:
    if not sessions.login_csrf_ok():
        return _login_page(403, "The form expired. Please sign in again.")
    cofre = services()
    with cofre.write() as session:
        result = sessions.logins().log_in(
            session,
            request.form.get("username", "").strip(),
            request.form.get("password", ""),
            request.remote_addr or "-",
            replaces=sessions.session_token(),
            request_id=g.request_id,
        )
    if isinstance(result, LoginRefused):
        return _login_page(429 if result.reason == "throttled" else 401, REFUSALS[result.reason])
    response = redirect(_next_path(), 303)
    sessions.set_session_cookie(response, result.token)
    sessions.clear_login_csrf(response)
    return response


@blueprint.post("/logout")
@public  # ends only the caller's own session; the CSRF check still applies
def logout() -> ResponseReturnValue:
    token, live = sessions.session_token(), g.get("login_session")
    if token and live:
        cofre = services()
        with cofre.write() as session:
            sessions.logins().log_out(session, token, live.actor, g.request_id)
    response = redirect(url_for("admin_auth.login_form") + "?bye=1", 303)
    sessions.clear_session_cookie(response)
    return response


def _login_page(status: int, message: str) -> ResponseReturnValue:
    token = sessions.new_login_csrf()
    page = render_template(
        "admin/login.html",
        login_csrf=token,
        message=message,
        next_path=_next_path(),
        signed_out=request.args.get("bye") == "1",
    )
    response = make_response(page, status)
    sessions.issue_login_csrf(response, token)
    return response


def _next_path() -> str:
    """Only a path inside the admin pages: never an open redirect to another site."""
    wanted = request.values.get("next", "")
    if wanted.startswith("/admin/") and not wanted.startswith("/admin//"):
        return wanted
    return url_for("admin_dashboard.home")
