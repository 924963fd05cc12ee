"""The admin pages' own static files (CSS) and template helpers; nothing from outside."""

from __future__ import annotations

from pathlib import Path

from flask import send_from_directory
from flask.typing import ResponseReturnValue

from server.admin import templating
from server.admin.pages import admin_blueprint
from server.security.access import public

STATIC = Path(__file__).resolve().parent.parent / "static"

blueprint = admin_blueprint("admin_assets")
blueprint.add_app_template_filter(templating.utc, "utc")
blueprint.add_app_template_filter(templating.short, "short")
blueprint.app_context_processor(templating.template_context)


@blueprint.get("/static/<path:filename>")
@public
def static(filename: str) -> ResponseReturnValue:
    response = send_from_directory(STATIC, filename, max_age=3600)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
