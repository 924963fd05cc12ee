"""/api/v1/promotions: moves of production waiting for a second person (four-eyes),
and their approval or rejection. A key limited to some models sees and decides
only theirs."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput
from governance.rollouts.approvals import as_dict
from server.extension import services
from server.http.bodies import json_object
from server.security.access import current_actor, requires

blueprint = Blueprint("api_promotions", __name__, url_prefix="/api/v1/promotions")


@blueprint.get("")
@requires("model:alias")
def pending_promotions() -> ResponseReturnValue:
    """Promotion requests waiting for approval."""
    cofre = services()
    actor = current_actor()
    with cofre.read() as session:
        pending = [
            r for r in cofre.promotions.pending(session) if actor.may_use_model(r.model_name)
        ]
        return jsonify(promotions=[as_dict(r) for r in pending])


@blueprint.post("/<int:request_id>/approve")
@requires("model:alias")
def approve_promotion(request_id: int) -> ResponseReturnValue:
    """Approve a promotion (never one's own): production moves now."""
    cofre = services()
    with cofre.write() as session:
        return jsonify(as_dict(cofre.promotions.approve(session, current_actor(), request_id)))


@blueprint.post("/<int:request_id>/reject")
@requires("model:alias")
def reject_promotion(request_id: int) -> ResponseReturnValue:
    """Reject a promotion (never one's own); body {"reason": ...}."""
    reason = json_object().get("reason")
    if not isinstance(reason, str):
        raise InvalidInput("say why it is rejected", [FieldError("reason", "a string")])
    cofre = services()
    with cofre.write() as session:
        request = cofre.promotions.reject(session, current_actor(), request_id, reason)
        return jsonify(as_dict(request))
