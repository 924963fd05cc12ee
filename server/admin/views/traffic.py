"""Traffic per model and version over the latest monitoring window, as SVG charts:
requests per step with errors stacked, and the p95 latency. Read from the
monitoring job's traffic rollups, never from the log."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from governance.monitoring.windows import format_length
from server.admin.charts import series_chart
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_traffic")


@blueprint.get("/traffic")
@requires("model:metrics")
def overview() -> ResponseReturnValue:
    cofre, actor = services(), current_actor()
    with cofre.read() as session:
        series = cofre.monitoring.traffic(session, actor, cofre.monitoring_window)
    charts = [(s, series_chart(s, "%d %H:%M")) for s in series]
    return render(
        "admin/traffic.html",
        charts=charts,
        length=format_length(cofre.monitoring_window),
        step=cofre.settings.monitoring_step,
    )
