"""The Rollouts pages: running rollouts with their live figures (the page reloads
itself every few seconds, no JavaScript), one model's rollout in detail, and the
abort and promote forms."""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue

from server.admin import forms
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_rollouts")
REFRESH_SECONDS = 5


@blueprint.get("/rollouts")
@requires("model:metrics")
def overview() -> ResponseReturnValue:
    cofre = services()
    actor = current_actor()
    with cofre.read() as session:
        running = [r for r in cofre.rollouts.running(session) if actor.may_use_model(r.model_name)]
        statuses = [cofre.rollout_reports.status(session, r.model_name) for r in running]
    return render("admin/rollouts/list.html", rollouts=statuses, refresh=REFRESH_SECONDS)


@blueprint.get("/rollouts/<path:name>")
@requires("model:metrics")
def rollout(name: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        status = cofre.rollout_reports.status(session, name)
    return render(
        "admin/rollouts/rollout.html",
        rollout=status,
        refresh=REFRESH_SECONDS if status["status"] == "running" else None,
        done=request.args.get("done"),
    )


@blueprint.post("/rollouts/<path:name>/abort")
@requires("rollout:manage")
def abort(name: str) -> ResponseReturnValue:
    reason = forms.required_text(request.form, "reason")
    cofre = services()
    with cofre.write() as session:
        cofre.rollouts.abort(session, current_actor(), name, reason)
    return redirect(url_for("admin_rollouts.rollout", name=name, done="aborted"), 303)


@blueprint.post("/rollouts/<path:name>/promote")
@requires("rollout:manage")
def promote(name: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        moved = cofre.promotions.promote_rollout(session, current_actor(), name)
    done = "requested" if moved.pending else "promoted"
    return redirect(url_for("admin_rollouts.rollout", name=name, done=done), 303)
