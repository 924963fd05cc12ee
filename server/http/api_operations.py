"""JSON endpoints of scheduled operations: job history, backups, retraining plans and runs.

Reads need `operations:read` (admins, publishers, auditors); running or
verifying a backup needs `operations:manage` (admins); registering, changing and running
a retraining plan needs `model:publish`. Restores are left to the command
line on the host, where the operator chooses the target directory.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput
from governance.retraining.service import PlanRequest
from server import representations as rep
from server.extension import services
from server.http.bodies import json_object, query_id, query_number
from server.jobs import RETRAIN_PREFIX, job_table, parse_cron, retrain_work, run_recorded
from server.security.access import current_actor, requires

blueprint = Blueprint("api_operations", __name__, url_prefix="/api/v1/operations")


@blueprint.get("/jobs")
@requires("operations:read")
def list_jobs() -> ResponseReturnValue:
    cofre = services()
    limit = query_number("limit", 50)
    with cofre.read() as session:
        runs = cofre.jobs.recent(session, request.args.get("job") or None, limit)
        history = [rep.job_run(r) for r in runs]
    return jsonify(jobs=job_table(cofre), runs=history)


@blueprint.get("/backups")
@requires("operations:read")
def list_backups() -> ResponseReturnValue:
    return jsonify(backups=[e.as_dict() for e in services().backups.entries()])


@blueprint.post("/backups")
@requires("operations:manage")
def run_backup() -> ResponseReturnValue:
    entry = services().backups.run(current_actor())
    return jsonify(entry.as_dict()), 201


@blueprint.post("/backups/<backup_id>/verify")
@requires("operations:manage")
def verify_backup(backup_id: str) -> ResponseReturnValue:
    manifest = services().backups.verify(backup_id, current_actor())
    return jsonify(manifest.summary() | {"ok": True})


@blueprint.get("/retraining/plans")
@requires("operations:read")
def list_plans() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        return jsonify(
            plans=[rep.retraining_plan(p) for p in cofre.retraining.plans(session, current_actor())]
        )


@blueprint.post("/retraining/plans")
@requires("model:publish")
def create_plan() -> ResponseReturnValue:
    plan_request = _plan_request(json_object())
    parse_cron(plan_request.schedule)
    plan = services().retraining.create_plan(current_actor(), plan_request)
    return jsonify(rep.retraining_plan(plan)), 201


@blueprint.get("/retraining/plans/<int:plan_id>")
@requires("operations:read")
def show_plan(plan_id: int) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        plan = cofre.retraining.plan(session, plan_id, current_actor())
        runs = cofre.retraining.runs(session, current_actor(), plan_id, limit=20)
        return jsonify(rep.retraining_plan(plan) | {"runs": [rep.retraining_run(r) for r in runs]})


@blueprint.patch("/retraining/plans/<int:plan_id>")
@requires("model:publish")
def update_plan(plan_id: int) -> ResponseReturnValue:
    """Change what, besides its schedule, runs a plan (`on_alert`: drift, performance, null)."""
    data = json_object()
    if set(data) != {"on_alert"}:
        raise InvalidInput("only on_alert can be changed", [FieldError("on_alert", "is required")])
    plan = services().retraining.set_on_alert(current_actor(), plan_id, _on_alert(data))
    return jsonify(rep.retraining_plan(plan))


@blueprint.post("/retraining/plans/<int:plan_id>/runs")
@requires("model:publish")
def run_plan(plan_id: int) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        cofre.retraining.plan(session, plan_id, current_actor())
    run_recorded(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        f"{RETRAIN_PREFIX}{plan_id}",
        retrain_work(plan_id),
    )
    with cofre.read() as session:
        latest = cofre.retraining.runs(session, current_actor(), plan_id, limit=1)
    return jsonify(rep.retraining_run(latest[0])), 201


@blueprint.get("/retraining/runs")
@requires("operations:read")
def list_runs() -> ResponseReturnValue:
    cofre = services()
    plan_id = query_id("plan")
    limit = query_number("limit", 50)
    with cofre.read() as session:
        runs = cofre.retraining.runs(session, current_actor(), plan_id, limit)
        return jsonify(runs=[rep.retraining_run(r) for r in runs])


def _plan_request(data: dict[str, Any]) -> PlanRequest:
    errors = [
        FieldError(name, "is required")
        for name in ("model", "source_kind", "source", "target", "schedule", "metric")
        if not isinstance(data.get(name), str) or not data[name].strip()
    ]
    numbers = {
        "min_improvement": data.get("min_improvement", 0.01),
        "holdout": data.get("holdout", 0.25),
    }
    errors += [
        FieldError(name, "must be a number")
        for name, value in numbers.items()
        if isinstance(value, bool) or not isinstance(value, int | float)
    ]
    if errors:
        raise InvalidInput("the retraining plan is incomplete", errors)
    profile = data.get("profile_source")
    return PlanRequest(
        on_alert=_on_alert(data),
        model_name=data["model"],
        source_kind=data["source_kind"],
        source=data["source"],
        target=data["target"],
        schedule=data["schedule"],
        metric=data["metric"],
        min_improvement=float(numbers["min_improvement"]),
        holdout=float(numbers["holdout"]),
        profile_source=profile if isinstance(profile, str) and profile else None,
    )


def _on_alert(data: dict[str, Any]) -> str | None:
    value = data.get("on_alert")
    if value is not None and not isinstance(value, str):
        raise InvalidInput(
            "on_alert must be text", [FieldError("on_alert", "drift or performance")]
        )
    return value or None
