"""JSON endpoints of alerts: the alerts raised (firing and resolved, with their evidence)
and each model's rules.

Reading needs `monitoring:read` (publishers, auditors, admins); a key or user limited
to some models sees only their alerts. Changing a model's rules needs
`model:publish`; the guard refuses a key limited to other models on every route
naming the model.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput, MalformedInput
from governance.monitoring.rules import Rule, make_rule
from server import representations as rep
from server.extension import services
from server.http.bodies import json_object
from server.security.access import current_actor, requires

blueprint = Blueprint("api_alerts", __name__, url_prefix="/api/v1")
RULE_FIELDS = {"kind", "method", "threshold", "windows", "feature"}


@blueprint.get("/alerts")
@requires("monitoring:read")
def list_alerts() -> ResponseReturnValue:
    """Alerts, newest first, with their evidence and deliveries."""
    cofre = services()
    limit = request.args.get("limit", 100, type=int)
    state, model = request.args.get("state") or None, request.args.get("model") or None
    with cofre.read() as session:
        found = cofre.alerts.listing(session, current_actor(), state, model, limit)
        outbox = cofre.alerts.deliveries(session, [a.id for a in found])
        alerts = [rep.alert(a, outbox[a.id]) for a in found]
    return jsonify(alerts=alerts)


@blueprint.get("/models/<name>/alert-rules")
@requires("monitoring:read")
def list_rules(name: str) -> ResponseReturnValue:
    """The rules the model follows now (the configured defaults until it has its own)."""
    cofre = services()
    with cofre.read() as session:
        rules = cofre.alerts.rules(session, current_actor(), name)
    return jsonify(model=name, rules=[r.as_dict() for r in rules])


@blueprint.post("/models/<name>/alert-rules")
@requires("model:publish")
def add_rule(name: str) -> ResponseReturnValue:
    """Add a rule to the model (its first edit copies the defaults into its own rules)."""
    rule = _rule(json_object())
    cofre = services()
    with cofre.write() as session:
        added = cofre.alerts.add_rule(session, current_actor(), name, rule)
    return jsonify(added.as_dict()), 201


@blueprint.delete("/models/<name>/alert-rules/<rule>")
@requires("model:publish")
def remove_rule(name: str, rule: str) -> ResponseReturnValue:
    """Remove a rule (its id, or default-N while the model follows the defaults)."""
    cofre = services()
    with cofre.write() as session:
        removed = cofre.alerts.remove_rule(session, current_actor(), name, rule)
    return jsonify(removed=removed.as_dict())


def _rule(data: dict[str, Any]) -> Rule:
    unknown = sorted(set(data) - RULE_FIELDS)
    if unknown:
        raise MalformedInput("unknown field", [FieldError(unknown[0], "is not a rule field")])
    errors = []
    if not isinstance(data.get("kind"), str):
        errors.append(FieldError("kind", "is required"))
    threshold: Any = data.get("threshold")
    windows: Any = data.get("windows", 1)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        errors.append(FieldError("threshold", "a number is required"))
    if isinstance(windows, bool) or not isinstance(windows, int):
        errors.append(FieldError("windows", "a whole number"))
    for name in ("method", "feature"):
        if data.get(name) is not None and not isinstance(data[name], str):
            errors.append(FieldError(name, "must be text"))
    if errors:
        raise InvalidInput("the alert rule is incomplete", errors)
    return make_rule(
        data["kind"], data.get("method"), float(threshold), windows, data.get("feature")
    )
