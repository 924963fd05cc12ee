"""JSON endpoints of data-subject rights and contested decisions.

Subject ids travel in request bodies only, never in URLs (URLs end up in access
logs): every subject operation is a POST. Erasure, holds, exports and reviews
need `subject:manage` (auditors, admins); opening a review needs `review:open`
(the client system relaying the person's request, auditors, admins); an
explanation discloses the recorded input, so it needs `audit:read`.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput
from governance.identifiers import parse_number
from governance.subjects.caller import Caller
from server import representations as rep
from server.exports import subject_file
from server.extension import services
from server.http.bodies import json_fields, required_int, required_text, subject_id
from server.security.access import current_actor, requires

blueprint = Blueprint("api_subjects", __name__, url_prefix="/api/v1")


def _caller() -> Caller:
    return Caller(current_actor(), "api", g.request_id)


# -- subjects ---------------------------------------------------------------------------
@blueprint.post("/subjects/export")
@requires("subject:manage")
def export_subject() -> ResponseReturnValue:
    """Everything held about one subject (`subject_id` in the body; `format` json or csv)."""
    body = json_fields(("subject_id",), ("format",))
    fmt = body.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format must be json or csv", [FieldError("format", "json or csv")])
    cofre = services()
    with cofre.write() as session:
        export = cofre.subject_exports.export(session, _caller(), subject_id(body), fmt)
    exported = subject_file(export, fmt)
    response = Response(exported.body, mimetype=exported.mimetype)
    response.headers["Content-Disposition"] = exported.disposition()
    return response


@blueprint.post("/subjects/erasure")
@requires("subject:manage")
def erase_subject() -> ResponseReturnValue:
    """Erase a subject: destroy every data key of theirs (409 under legal hold)."""
    body = json_fields(("subject_id", "reason"))
    erased = services().subjects.erase(_caller(), subject_id(body), required_text(body, "reason"))
    return jsonify(rep.erasure(erased))


@blueprint.post("/subjects/status")
@requires("subject:manage")
def subject_status() -> ResponseReturnValue:
    """What is held about a subject (keys, holds, requests), nothing decrypted."""
    body = json_fields(("subject_id",))
    cofre = services()
    with cofre.read() as session:
        pseudonym = cofre.audit.pseudonym(subject_id(body))
        return jsonify(rep.subject_status(cofre.subjects.status(session, pseudonym)))


@blueprint.post("/subjects/holds")
@requires("subject:manage")
def hold_subject() -> ResponseReturnValue:
    """Place a legal hold: no erasure, no retention shredding until it is released."""
    body = json_fields(("subject_id", "reason"))
    hold = services().subjects.hold(_caller(), subject_id(body), required_text(body, "reason"))
    return jsonify(rep.subject_hold(hold)), 201


@blueprint.post("/subjects/holds/release")
@requires("subject:manage")
def release_subject() -> ResponseReturnValue:
    """Release a subject's legal hold."""
    body = json_fields(("subject_id",))
    return jsonify(rep.subject_hold(services().subjects.release(_caller(), subject_id(body))))


@blueprint.get("/subjects/retention")
@requires("subject:manage")
def retention_plan() -> ResponseReturnValue:
    """What the next retention run would shred (a dry run)."""
    cofre = services()
    with cofre.read() as session:
        return jsonify(rep.retention_report(cofre.retention.plan(session), dry_run=True))


# -- decisions and reviews -----------------------------------------------------------------
@blueprint.post("/predictions/<request_id>/reviews")
@requires("review:open")
def open_review(request_id: str) -> ResponseReturnValue:
    """Contest one row's decision (`row`, `reason`); the person's request, relayed."""
    body = json_fields(("row", "reason"))
    row, reason = required_int(body, "row"), required_text(body, "reason")
    opened = services().reviews.open(_caller(), request_id, row, reason)
    return jsonify(opened.as_dict()), 201


@blueprint.get("/predictions/<request_id>/explanation")
@requires("audit:read")
def explanation(request_id: str) -> ResponseReturnValue:
    """Each feature's contribution to row `?row=N`, by the version that decided."""
    row = parse_number(request.args.get("row", "0"))
    if row is None:
        raise InvalidInput("row must be a row index", [FieldError("row", "a number from 0")])
    cofre, actor = services(), current_actor()
    with cofre.write() as session:
        decision = cofre.decisions.locate(session, actor, request_id, row)
        explained = cofre.decisions.explain(session, decision, actor, "api", g.request_id)
        return jsonify(explained.as_dict())


@blueprint.get("/reviews")
@requires("subject:manage")
def list_reviews() -> ResponseReturnValue:
    """Reviews of contested decisions, newest first (`?status=open|decided`)."""
    cofre = services()
    with cofre.read() as session:
        found = cofre.reviews.listing(session, current_actor(), request.args.get("status"))
        return jsonify(reviews=[view.as_dict() for view in found])


@blueprint.get("/reviews/<int:review_id>")
@requires("subject:manage")
def show_review(review_id: int) -> ResponseReturnValue:
    """One review with its reasons (the reading is audited)."""
    cofre = services()
    with cofre.write() as session:
        return jsonify(cofre.reviews.show(session, _caller(), review_id).as_dict())


@blueprint.post("/reviews/<int:review_id>/decision")
@requires("subject:manage")
def decide_review(review_id: int) -> ResponseReturnValue:
    """Decide a review: `outcome` upheld|overturned, `reason`, optional `corrected_output`."""
    body = json_fields(("outcome", "reason"), ("corrected_output",))
    decided = services().reviews.decide(
        _caller(),
        review_id,
        required_text(body, "outcome"),
        required_text(body, "reason"),
        body.get("corrected_output"),
    )
    return jsonify(decided.as_dict())
