"""The Alerts pages: alerts firing and resolved with their evidence, and one model's
rules with the forms to add and remove them.

Reading needs `monitoring:read`; changing rules `model:publish`. A user limited to some
models sees only their alerts, and the guard refuses the rules of any other model.
"""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput
from governance.monitoring.alerts import STATES
from governance.monitoring.rules import KINDS, make_rule
from server.admin import forms
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_alerts", "/alerts")
SHOWN = 200
NOTICES = {"added": "The rule was added.", "removed": "The rule was removed."}


@blueprint.get("/")
@requires("monitoring:read")
def overview() -> ResponseReturnValue:
    state = request.args.get("state") or None
    cofre = services()
    with cofre.read() as session:
        found = cofre.alerts.listing(
            session, current_actor(), state if state in STATES else None, limit=SHOWN
        )
        return render("admin/alerts/list.html", alerts=found, shown=state, states=STATES)


@blueprint.get("/rules/<name>")
@requires("monitoring:read")
def rules(name: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        found = cofre.alerts.rules(session, current_actor(), name)
    return render(
        "admin/alerts/rules.html",
        model=name,
        rules=found,
        kinds=KINDS,
        notice=NOTICES.get(request.args.get("done", "")),
    )


@blueprint.post("/rules/<name>")
@requires("model:publish")
def add_rule(name: str) -> ResponseReturnValue:
    form = request.form
    rule = make_rule(
        forms.required_text(form, "kind"),
        form.get("method", "").strip() or None,
        _number(form.get("threshold", "")),
        forms.optional_int(form, "windows") or 1,
        form.get("feature", "").strip() or None,
    )
    cofre = services()
    with cofre.write() as session:
        cofre.alerts.add_rule(session, current_actor(), name, rule)
    return redirect(url_for("admin_alerts.rules", name=name, done="added"), 303)


@blueprint.post("/rules/<name>/<rule>/remove")
@requires("model:publish")
def remove_rule(name: str, rule: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        cofre.alerts.remove_rule(session, current_actor(), name, rule)
    return redirect(url_for("admin_alerts.rules", name=name, done="removed"), 303)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            "the threshold must be a number", [FieldError("threshold", "a number")]
        ) from None
