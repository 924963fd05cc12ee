"""GET /metrics: Prometheus text exposition for operators (role-gated)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST

from governance.monitoring.figures import DRIFT, PERFORMANCE
from server.extension import services
from server.metrics import MonitoringCollector, StorageCollector, exposition
from server.security.access import current_actor, requires

blueprint = Blueprint("observability", __name__)


@blueprint.get("/metrics")
@requires("metrics:read")
def metrics() -> ResponseReturnValue:
    """Prometheus metrics of every worker, the latest monitoring figures (of the
    models the caller may use), free disk space and the database's size."""
    cofre, actor = services(), current_actor()

    def latest() -> list[Any]:
        with cofre.read() as session:
            found = cofre.monitoring.latest(session, cofre.monitoring_window, (DRIFT, PERFORMANCE))
        return [r for r in found if actor.may_use_model(r.model_name)]

    body = exposition(MonitoringCollector(latest), StorageCollector(cofre.storage))
    return Response(body, content_type=CONTENT_TYPE_LATEST)
