"""GET /api/v1/models/{name}/monitoring: a version's latest stored monitoring report
(read from the rollups, never from the log)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import NotFound
from governance.monitoring.windows import format_length, parse_length
from server.extension import services
from server.http.bodies import query_id
from server.security.access import requires

blueprint = Blueprint("api_monitoring", __name__, url_prefix="/api/v1/models")


@blueprint.get("/<name>/monitoring")
@requires("monitoring:read")
def monitoring(name: str) -> ResponseReturnValue:
    """The report of `?version=` (default: the production alias) over `?window=`
    windows (default: the monitoring_window setting)."""
    cofre = services()
    text = request.args.get("window", "")
    length = parse_length(text) if text else cofre.monitoring_window
    wanted = query_id("version")
    with cofre.read() as session:
        version = cofre.registry.resolve(session, name, version=wanted).version
        report = cofre.monitoring.report(session, name, version, length)
    if report is None:
        raise NotFound(
            f"no monitoring report of {name} version {version} over {format_length(length)} "
            "windows yet (the monitoring job or `cofre monitor` computes one)"
        )
    return jsonify(report)
