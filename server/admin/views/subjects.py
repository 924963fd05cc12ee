"""The Subjects page: find a subject, see what is held about them, export, erase, hold.

The subject id is typed into POST forms only; URLs carry the pseudonym. Every
action form asks for the id again, which both confirms the action (erasure
cannot be undone) and lets the server check it is this subject's.
"""

from __future__ import annotations

from flask import Response, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput
from governance.subjects.caller import Caller
from server.admin import forms
from server.admin.pages import admin_blueprint, render
from server.exports import check_format, subject_file
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_subjects", "/subjects")
# ?done= values a redirect may announce; never text from the request itself.
NOTICES = {
    "erased": "The subject was erased: every data key of theirs is destroyed.",
    "held": "A legal hold was placed.",
    "released": "The legal hold was released.",
}


@blueprint.get("/")
@requires("subject:manage")
def lookup_form() -> ResponseReturnValue:
    return render("admin/subjects/lookup.html")


@blueprint.post("/lookup")
@requires("subject:manage")
def lookup() -> ResponseReturnValue:
    pseudonym = services().audit.pseudonym(forms.required_text(request.form, "subject_id"))
    return redirect(url_for("admin_subjects.subject", pseudonym=pseudonym), 303)


@blueprint.get("/<pseudonym>")
@requires("subject:manage")
def subject(pseudonym: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        status = cofre.subjects.status(session, pseudonym)
        return render(
            "admin/subjects/subject.html",
            subject=status,
            notice=NOTICES.get(request.args.get("done", "")),
        )


@blueprint.post("/<pseudonym>/export")
@requires("subject:manage")
def export(pseudonym: str) -> ResponseReturnValue:
    subject_id = _confirmed(pseudonym)
    fmt = check_format(request.form.get("format", "json"))
    cofre = services()
    with cofre.write() as session:
        gathered = cofre.subject_exports.export(session, _caller(), subject_id, fmt)
    exported = subject_file(gathered, fmt)
    response = Response(exported.body, mimetype=exported.mimetype)
    response.headers["Content-Disposition"] = exported.disposition()
    return response


@blueprint.post("/<pseudonym>/erasure")
@requires("subject:manage")
def erase(pseudonym: str) -> ResponseReturnValue:
    subject_id = _confirmed(pseudonym)
    services().subjects.erase(_caller(), subject_id, request.form.get("reason", ""))
    return redirect(url_for("admin_subjects.subject", pseudonym=pseudonym, done="erased"), 303)


@blueprint.post("/<pseudonym>/hold")
@requires("subject:manage")
def hold(pseudonym: str) -> ResponseReturnValue:
    subject_id = _confirmed(pseudonym)
    services().subjects.hold(_caller(), subject_id, request.form.get("reason", ""))
    return redirect(url_for("admin_subjects.subject", pseudonym=pseudonym, done="held"), 303)


@blueprint.post("/<pseudonym>/release")
@requires("subject:manage")
def release(pseudonym: str) -> ResponseReturnValue:
    services().subjects.release(_caller(), _confirmed(pseudonym))
    return redirect(url_for("admin_subjects.subject", pseudonym=pseudonym, done="released"), 303)


def _caller() -> Caller:
    return Caller(current_actor(), "admin", g.request_id)


def _confirmed(pseudonym: str) -> str:
    """The subject id typed into the form, if it is the subject this page is about."""
    subject_id = forms.required_text(request.form, "subject_id")
    if services().audit.pseudonym(subject_id) != pseudonym:
        raise InvalidInput(
            "that id is not this subject's", [FieldError("subject_id", "type this subject's id")]
        )
    return subject_id
