"""The landing page: models in production, today's traffic, the chain's last checks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask.typing import ResponseReturnValue

from governance.audit import traffic
from governance.audit.verifications import last_verification
from governance.clock import utcnow
from governance.registry.service import DEFAULT_ALIAS
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_dashboard")


@blueprint.get("/")
@requires("model:read")
def home() -> ResponseReturnValue:
    cofre, now, actor = services(), utcnow(), current_actor()
    midnight = datetime.combine(now.date(), time(), tzinfo=UTC)
    with cofre.read() as session:
        models = cofre.registry.models(session, actor)
        since = max(now - midnight, timedelta(seconds=1))
        today = traffic.traffic(session, actor, now, since, 1)
        verified = last_verification(session)
        checkpoint = cofre.audit.latest_checkpoint(session)
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
        )
