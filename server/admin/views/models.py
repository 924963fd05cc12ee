"""Model pages: registered models, versions with their cards, aliases and history;
promote and roll back (each behind a confirmation page), upload a new version.

Model names may hold '/', so routes take them as <path:name>.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from governance.errors import FieldError, InvalidInput
from governance.registry.compiled import RUNTIMES
from governance.registry.records import RegisteredModel
from governance.registry.service import DECISION_MODES, DEFAULT_ALIAS, PublishRequest
from server import representations as rep
from server.admin import forms
from server.admin.pages import admin_blueprint, render
from server.container import Container
from server.extension import services
from server.http.bodies import uploaded_reference
from server.security.access import current_actor, requires
from server.security.sessions import accepts_artifacts

blueprint = admin_blueprint("admin_models")
# ?done= values a redirect may announce; never text from the request itself.
NOTICES = {
    "promoted": "The alias was moved.",
    "rolled-back": "The alias was rolled back.",
    "published": "The new version was published.",
}


@blueprint.get("/models/")
@requires("model:read")
def list_models() -> ResponseReturnValue:
    with services().read() as session:
        models = services().registry.models(session, current_actor())
        return render("admin/models/list.html", models=models)


@blueprint.get("/models/<path:name>/versions/<int:version>")
@requires("model:read")
def version(name: str, version: int) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        found = cofre.registry.resolve(session, name, version=version)
        refusal = cofre.registry.load_refusal(found)
        return render(
            "admin/models/version.html", version=found, model=found.model, refusal=refusal
        )


@blueprint.get("/models/<path:name>/promote")
@requires("model:alias")
def promote_confirm(name: str) -> ResponseReturnValue:
    alias = request.args.get("alias", DEFAULT_ALIAS).strip()
    target = forms.optional_int(request.args, "version")
    cofre = services()
    with cofre.read() as session:
        model = cofre.registry.model(session, name)
        if target is None:
            raise InvalidInput("choose a version", [FieldError("version", "is required")])
        chosen = cofre.registry.resolve(session, name, version=target)
        current = next((a.version for a in model.aliases if a.name == alias), None)
        return render(
            "admin/models/confirm.html",
            model=model,
            alias=alias,
            to=chosen.version,
            current=current,
        )


@blueprint.post("/models/<path:name>/promote")
@requires("model:alias")
def promote(name: str) -> ResponseReturnValue:
    alias = forms.required_text(request.form, "alias")
    target = forms.optional_int(request.form, "version")
    if target is None:
        raise InvalidInput("choose a version", [FieldError("version", "is required")])
    cofre = services()
    with cofre.write() as session:
        moved = cofre.promotions.set_alias(session, current_actor(), name, target, alias)
    done = "requested" if moved.pending else "promoted"
    return redirect(url_for("admin_models.model", name=name, done=done), 303)


@blueprint.get("/models/<path:name>/rollback")
@requires("model:alias")
def rollback_confirm(name: str) -> ResponseReturnValue:
    alias = request.args.get("alias", DEFAULT_ALIAS).strip()
    cofre = services()
    with cofre.read() as session:
        model = cofre.registry.model(session, name)
        current = next((a.version for a in model.aliases if a.name == alias), None)
        return render(
            "admin/models/confirm.html", model=model, alias=alias, current=current, rollback=True
        )


@blueprint.post("/models/<path:name>/rollback")
@requires("model:alias")
def rollback(name: str) -> ResponseReturnValue:
    alias = forms.required_text(request.form, "alias")
    cofre = services()
    with cofre.write() as session:
        cofre.registry.rollback(session, current_actor(), name, alias)
    return redirect(url_for("admin_models.model", name=name, done="rolled-back"), 303)


@blueprint.get("/models/<path:name>")
@requires("model:read")
def model(name: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        found = cofre.registry.model(session, name)
        history = cofre.registry.alias_history(session, name)
        refused = {v.version for v in found.versions if cofre.registry.load_refusal(v)}
        return render(
            "admin/models/model.html",
            model=found,
            history=list(reversed(history)),
            refused=refused,
            ending=_endings(cofre, session, found),
            steps=list(reversed(cofre.retirements.history(session, name))),
            notice=NOTICES.get(request.args.get("done", "")),
        )


def _endings(cofre: Container, session: Session, model: RegisteredModel) -> dict[int, Any]:
    """Each version on its way out: its retirement facts and who still calls it."""
    return {
        v.version: {
            "facts": rep.retirement_detail(v),
            "callers": cofre.retirements.callers(session, model.name, v.version),
        }
        for v in model.versions
        if v.retirement is not None
    }


@blueprint.get("/publish")
@requires("model:publish")
def publish_form() -> ResponseReturnValue:
    return render(
        "admin/models/publish.html",
        modes=DECISION_MODES,
        runtimes=RUNTIMES,
        name=request.args.get("name", ""),
    )


@blueprint.post("/publish")
@requires("model:publish")
@accepts_artifacts
def publish() -> ResponseReturnValue:
    cofre = services()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("the skops file is missing", [FieldError("file", "is required")])
    name = forms.required_text(request.form, "name")
    alias = request.form.get("alias", "").strip()
    publish_request = PublishRequest(
        name=name,
        artifact=upload.read(),
        card=forms.model_card(request.form),
        aliases=[alias] if alias else [],
        signature=forms.optional_upload(request.files, "signature"),
        reference=uploaded_reference(),
        runtime=request.form.get("runtime", "auto"),
        allow_duplicate=request.form.get("allow_duplicate") == "on",
        note=request.form.get("note", ""),
    )
    cofre.promotions.check_publish_aliases(publish_request.aliases)
    prepared = cofre.registry.prepare(current_actor(), publish_request)  # before the lock
    with cofre.write() as session:
        created = cofre.registry.publish(session, current_actor(), prepared)
        number = created.version
    return redirect(url_for("admin_models.version", name=name, version=number), 303)
