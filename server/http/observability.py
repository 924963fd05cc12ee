"""GET /metrics: Prometheus text exposition for operators (role-gated)."""

from __future__ import annotations

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST

from server.metrics import exposition
from server.security.access import requires

blueprint = Blueprint("observability", __name__)


@blueprint.get("/metrics")
@requires("metrics:read")
def metrics() -> ResponseReturnValue:
    """Prometheus metrics of every worker."""
    return Response(exposition(), content_type=CONTENT_TYPE_LATEST)
