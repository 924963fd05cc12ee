"""Liveness and readiness: /healthz (the process answers) and /readyz (it can serve)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from server.extension import services
from server.readiness import readiness
from server.security.access import public

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@public
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@blueprint.get("/readyz")
@public
def readyz() -> ResponseReturnValue:
    checks: dict[str, Any] = readiness(services())
    ready = all(c["ok"] for c in checks.values() if not c.get("advisory"))
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503
