"""What every admin blueprint shares: templates, HTML error pages, security headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from governance.errors import CofreError, InvalidInput, PermissionDenied, Unauthenticated
from server.errors import problem_for, record_refusal
from server.security.sessions import clear_session_cookie

# No script at all; styles and images only from the appliance itself.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def admin_blueprint(name: str, url_prefix: str = "") -> Blueprint:
    """A blueprint under /admin with the shared templates and HTML error pages."""
    blueprint = Blueprint(
        name, __name__, url_prefix="/admin" + url_prefix, template_folder="templates"
    )
    blueprint.register_error_handler(CofreError, _on_error)
    blueprint.after_request(_harden)
    return blueprint


def render(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return render_template(template, **context), status


def login_url(next_path: str | None = None) -> str:
    target = next_path or request.full_path.rstrip("?")
    return url_for("admin_auth.login_form") + "?" + urlencode({"next": target})


def _on_error(exc: CofreError) -> ResponseReturnValue:
    if isinstance(exc, Unauthenticated) and not request.headers.get("Authorization"):
        record_refusal(exc, status=303)
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(login_url(target), 303)
    record_refusal(exc)
    status, body = problem_for(exc)
    field_errors = exc.errors if isinstance(exc, InvalidInput) else []
    title = "Not allowed" if isinstance(exc, PermissionDenied) else body["title"]
    return render("admin/error.html", status, title=title, problem=body, field_errors=field_errors)


def _harden(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if g.get("drop_session_cookie"):
        clear_session_cookie(response)
    return response
