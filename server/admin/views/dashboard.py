"""The landing page: models in production, firing alerts, today's traffic, the chain's
last checks."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask.typing import ResponseReturnValue

from governance.audit.verifications import last_verification
from governance.clock import utcnow
from governance.monitoring import traffic
from governance.registry.service import DEFAULT_ALIAS
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_dashboard")
FIRING_SHOWN = 20


@blueprint.get("/")
@requires("model:read")
def home() -> ResponseReturnValue:
    cofre, now, actor = services(), utcnow(), current_actor()
    midnight = datetime.combine(now.date(), time(), tzinfo=UTC)
    with cofre.read() as session:
        models = cofre.registry.models(session, actor)
        today = cofre.monitoring.traffic_since(session, actor, midnight)
        verified = last_verification(session)
        checkpoint = cofre.audit.latest_checkpoint(session)
        firing = cofre.alerts.listing(session, current_actor(), "firing", limit=FIRING_SHOWN)
        production = [
            (m, alias) for m in models for alias in m.aliases if alias.name == DEFAULT_ALIAS
        ]
        return render(
            "admin/dashboard.html",
            production=production,
            model_count=len(models),
            today=today,
            totals=traffic.totals(today),
            verified=verified,
            checkpoint=checkpoint,
            midnight=midnight,
            firing=firing,
            firing_limit=FIRING_SHOWN,
        )
