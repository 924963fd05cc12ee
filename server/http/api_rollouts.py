"""/api/v1/models/{name}/rollout: a model's staged rollout (GET status, PUT start,
POST .../promote, POST .../abort). Publisher or admin; model-scoped keys only for
their models (the access guard checks the `name` in the URL)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput, MalformedInput
from governance.rollouts.approvals import as_dict as promotion_as_dict
from governance.rollouts.reports import describe
from governance.rollouts.service import RolloutRequest
from server.extension import services
from server.http.bodies import json_object, required_int
from server.security.access import current_actor, requires

blueprint = Blueprint("api_rollouts", __name__, url_prefix="/api/v1/models")
START_FIELDS = {
    "candidate",
    "strategy",
    "percent",
    "sticky",
    "guardrails",
    "min_requests",
    "alpha",
    "power",
    "horizon",
    "looks",
}


@blueprint.get("/<name>/rollout")
@requires("model:metrics")
def rollout_status(name: str) -> ResponseReturnValue:
    """The running (else latest) rollout with per-variant figures and statistics."""
    cofre = services()
    with cofre.read() as session:
        return jsonify(cofre.rollout_reports.status(session, name))


@blueprint.put("/<name>/rollout")
@requires("rollout:manage")
def start_rollout(name: str) -> ResponseReturnValue:
    """Start a rollout of a candidate version (one per model at a time)."""
    start = start_request(name, json_object())
    cofre = services()
    with cofre.write() as session:
        rollout = cofre.rollouts.start(session, current_actor(), start)
        body = describe(rollout)
    return jsonify(body), 201


@blueprint.post("/<name>/rollout/promote")
@requires("rollout:manage")
def promote_rollout(name: str) -> ResponseReturnValue:
    """Point production at the candidate and end the rollout."""
    cofre = services()
    with cofre.write() as session:
        moved = cofre.promotions.promote_rollout(session, current_actor(), name)
        if moved.pending:  # four-eyes: another person approves it
            return jsonify(promotion_as_dict(moved.pending)), 202
        body = describe(cofre.rollouts.latest(session, name))
    return jsonify(body)


@blueprint.post("/<name>/rollout/abort")
@requires("rollout:manage")
def abort_rollout(name: str) -> ResponseReturnValue:
    """Send all traffic back to the champion and end the rollout; body {"reason": ...}."""
    reason = json_object().get("reason")
    if not isinstance(reason, str):
        raise InvalidInput("say why the rollout is aborted", [FieldError("reason", "a string")])
    cofre = services()
    with cofre.write() as session:
        body = describe(cofre.rollouts.abort(session, current_actor(), name, reason))
    return jsonify(body)


def start_request(name: str, body: dict[str, Any]) -> RolloutRequest:
    unknown = sorted(set(body) - START_FIELDS)
    if unknown:
        raise MalformedInput(f"unknown field {unknown[0][:64]!r}")
    strategy = body.get("strategy")
    if not isinstance(strategy, str):
        raise InvalidInput("strategy is required", [FieldError("strategy", "a string")])
    rules = body.get("guardrails", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise InvalidInput("guardrails is a list", [FieldError("guardrails", "strings")])
    defaults = RolloutRequest(name, 0, strategy)
    return RolloutRequest(
        name=name,
        candidate=required_int(body, "candidate"),
        strategy=strategy,
        percent=_number(body, "percent", None),
        sticky=str(body.get("sticky", "subject")),
        guardrails=tuple(rules),
        min_requests=int(_number(body, "min_requests", defaults.min_requests) or 0),
        alpha=float(_number(body, "alpha", defaults.alpha) or 0),
        power=float(_number(body, "power", defaults.power) or 0),
        horizon=int(_number(body, "horizon", defaults.horizon) or 0),
        looks=int(_number(body, "looks", defaults.looks) or 0),
    )


def _number(body: dict[str, Any], name: str, default: float | None) -> float | None:
    value = body.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number", [FieldError(name, "a number")])
    return float(value)
