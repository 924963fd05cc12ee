"""Audit log pages: search, a record's detail, chain verification, exports.

The subject id an auditor types travels only in a POST body: it is turned into
its pseudonym at once, and only the pseudonym appears in URLs (and so in access
logs).
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, g, redirect, request, url_for
from flask.typing import ResponseReturnValue

from governance.audit.verifications import last_verification, record_verification
from server.admin import forms
from server.admin.pages import admin_blueprint, render
from server.exports import audit_file, check_format
from server.extension import services
from server.security.access import current_actor, requires

blueprint = admin_blueprint("admin_audit", "/audit")
PER_PAGE = 50
OUTCOMES = ("ok", "denied", "rejected", "error", "failed")


@blueprint.get("/")
@requires("audit:read")
def search() -> ResponseReturnValue:
    cofre, query = services(), forms.audit_query(request.args)
    with cofre.read() as session:
        search = cofre.audit_search
        page = search.page(
            session, current_actor(), query, forms.page_number(request.args), PER_PAGE
        )
        return render(
            "admin/audit/search.html",
            page=page,
            query=query,
            args=forms.query_args(request.args),
            names=search.caller_names(session),
            outcomes=OUTCOMES,
        )


@blueprint.post("/search")
@requires("audit:read")
def search_submit() -> ResponseReturnValue:
    subject_id = request.form.get("subject_id", "").strip()
    pseudonym = services().audit.pseudonym(subject_id) if subject_id else ""
    args = forms.query_args(request.form, pseudonym)
    forms.audit_query(args)  # refuse bad dates and numbers here, not on the next page
    return redirect(url_for("admin_audit.search") + "?" + urlencode(args), 303)


@blueprint.get("/records/<seq:seq>")
@requires("audit:read")
def record(seq: int) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        search = cofre.audit_search
        found = search.record(session, current_actor(), seq)
        rows = cofre.disclosures.view(session, current_actor(), found, g.request_id)
        last, names = search.last_seq(session), search.caller_names(session)
    return render("admin/audit/record.html", record=found, rows=rows, last_seq=last, names=names)


@blueprint.get("/verify")
@requires("audit:verify")
def verification() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        return render(
            "admin/audit/verify.html",
            last=last_verification(session),
            checkpoint=cofre.audit.latest_checkpoint(session),
        )


@blueprint.post("/verify")
@requires("audit:verify")
def verify() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:  # a long read must not hold the log's write lock
        report = cofre.audit.verify(session)
    with cofre.write() as session:
        record_verification(session, cofre.audit, current_actor(), report, g.request_id)
    return redirect(url_for("admin_audit.verification"), 303)


@blueprint.post("/export")
@requires("audit:export")
def export() -> ResponseReturnValue:
    cofre = services()
    subject_id = request.form.get("subject_id", "").strip()
    pseudonym = cofre.audit.pseudonym(subject_id) if subject_id else ""
    query = forms.audit_query(request.form, pseudonym)
    fmt = check_format(request.form.get("format", "json"))
    with cofre.write() as session:
        records = cofre.audit_search.matching(session, current_actor(), query)
        disclosed = cofre.disclosures.export(
            session, current_actor(), records, fmt, query.subject, g.request_id
        )
    exported = audit_file(disclosed, fmt)
    response = Response(exported.body, mimetype=exported.mimetype)
    response.headers["Content-Disposition"] = exported.disposition()
    return response
