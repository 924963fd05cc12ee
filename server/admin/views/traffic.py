"""Live traffic per model and version over the last hour or day, as SVG charts."""

from __future__ import annotations

from datetime import timedelta

from flask import request
from flask.typing import ResponseReturnValue

from governance.audit import traffic
from governance.clock import utcnow
from server.admin.charts import series_chart
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_traffic")
# window name -> (length, buckets, label format)
WINDOWS = {
    "hour": (timedelta(hours=1), 12, "%H:%M"),
    "day": (timedelta(days=1), 24, "%d %H:00"),
}


@blueprint.get("/traffic")
@requires("model:metrics")
def overview() -> ResponseReturnValue:
    window = request.args.get("window", "hour")
    length, buckets, label = WINDOWS.get(window, WINDOWS["hour"])
    now = utcnow()
    with services().read() as session:
        series = traffic.traffic(session, current_actor(), now, length, buckets)
    charts = [(s, series_chart(s, label)) for s in series]
    return render(
        "admin/traffic.html",
        window=window if window in WINDOWS else "hour",
        windows=list(WINDOWS),
        charts=charts,
        start=now - length,
        now=now,
    )
