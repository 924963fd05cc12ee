"""Operations pages: backups (run behind a confirmation page, verify), the scheduled
jobs with their next firing, the job history, and retraining plans with their runs.

Reading needs `operations:read`; running and verifying backups `operations:manage`.
Restores stay on the command line, where the operator picks the target directory.
"""

from __future__ import annotations

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue

from backups.catalog import check_id
from server.admin import forms
from server.admin.pages import admin_blueprint, render
from server.extension import services
from server.jobs import job_table
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_operations", "/operations")
PER_PAGE = 25
RETRAINING_RUNS = 100
# ?done= values a redirect may announce; never text from the request itself.
NOTICES = {
    "backed-up": "The backup was written and verified.",
    "verified": "The backup was verified: every member is intact.",
}


@blueprint.get("/")
@requires("operations:read")
def overview() -> ResponseReturnValue:
    cofre = services()
    entries, schedule = cofre.backups.entries(), job_table(cofre)
    with cofre.read() as session:
        history = cofre.jobs.page(session, forms.page_number(request.args), PER_PAGE)
        return render(
            "admin/operations/overview.html",
            backups=entries,
            mirrored=cofre.settings.backup_mirror_dir is not None,
            schedule=schedule,
            history=history,
            notice=NOTICES.get(request.args.get("done", "")),
            highlight=request.args.get("backup", ""),
        )


@blueprint.get("/backups/run")
@requires("operations:manage")
def run_backup_confirm() -> ResponseReturnValue:
    cofre = services()
    return render(
        "admin/operations/confirm.html",
        estimate=cofre.backups.estimate_bytes(),
        mirrored=cofre.settings.backup_mirror_dir is not None,
    )


@blueprint.post("/backups")
@requires("operations:manage")
def run_backup() -> ResponseReturnValue:
    entry = services().backups.run(current_actor())
    return redirect(url_for("admin_operations.overview", done="backed-up", backup=entry.id), 303)


@blueprint.post("/backups/<backup_id>/verify")
@requires("operations:manage")
def verify_backup(backup_id: str) -> ResponseReturnValue:
    services().backups.verify(check_id(backup_id), current_actor())
    return redirect(url_for("admin_operations.overview", done="verified", backup=backup_id), 303)


@blueprint.get("/retraining")
@requires("operations:read")
def retraining() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        plans = cofre.retraining.plans(session, current_actor())
        runs = cofre.retraining.runs(session, current_actor(), limit=RETRAINING_RUNS)
        return render(
            "admin/operations/retraining.html",
            plans=plans,
            models={plan.id: plan.model_name for plan in plans},
            runs=runs,
            limit=RETRAINING_RUNS,
        )
