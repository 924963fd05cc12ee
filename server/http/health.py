"""Liveness and readiness: /healthz (the process answers) and /readyz (it can serve)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from server.extension import services
from server.readiness import readiness
from server.security.access import caller_may, public

blueprint = Blueprint("health", __name__)
DETAILS_PERMISSION = "metrics:read"


@blueprint.get("/healthz")
@public
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@blueprint.get("/readyz")
@public
def readyz() -> ResponseReturnValue:
    """Ready or not for anybody (load balancers, probes); the checks' details (key
    ids, schema revision, backup state) only for operators: a key or session whose
    role may read the metrics (admin, metrics)."""
    detailed = caller_may(DETAILS_PERMISSION)
    checks: dict[str, Any] = readiness(services())
    ready = all(c["ok"] for c in checks.values() if not c.get("advisory"))
    body: dict[str, Any] = {"status": "ready" if ready else "not ready"}
    if detailed:
        body["checks"] = checks
    return jsonify(body), 200 if ready else 503
