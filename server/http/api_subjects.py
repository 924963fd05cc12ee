"""JSON endpoints of data-subject rights and contested decisions.

Subject ids travel in request bodies only, never in URLs (URLs end up in access
logs): every subject operation is a POST. Erasure, holds, exports and reviews
need `subject:manage` (auditors, admins); opening a review needs `review:open`
(the client system relaying the person's request, auditors, admins); an
explanation discloses the recorded input, so it needs `audit:read`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput, MalformedInput
from governance.identifiers import parse_number
from governance.subjects.caller import Caller
from server import representations as rep
from server.exports import subject_file
from server.extension import services
from server.http.bodies import json_object
from server.security.access import current_actor, requires

blueprint = Blueprint("api_subjects", __name__, url_prefix="/api/v1")


def _caller() -> Caller:
    return Caller(current_actor(), "api", g.request_id)


def _body(required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON body with exactly these keys: an unknown one is a 400 naming it, so a
    typo (`subject` for `subject_id`) never passes for an empty field."""
    body = json_object()
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise MalformedInput(f"unknown field {unknown[0][:64]!r} in the body")
    missing = [name for name in required if body.get(name) in (None, "")]
    if missing:
        raise InvalidInput(
            f"{missing[0]} is required", [FieldError(name, "is required") for name in missing]
        )
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", [FieldError(name, "must be a string")])
    return value


# -- subjects ---------------------------------------------------------------------------
@blueprint.post("/subjects/export")
@requires("subject:manage")
def export_subject() -> ResponseReturnValue:
    """Everything held about one subject (`subject_id` in the body; `format` json or csv)."""
    body = _body(("subject_id",), ("format",))
    fmt = body.get("format") or "json"
    cofre = services()
    with cofre.write() as session:
        export = cofre.subject_exports.export(session, _caller(), _text(body, "subject_id"), fmt)
    exported = subject_file(export, fmt)
    response = Response(exported.body, mimetype=exported.mimetype)
    response.headers["Content-Disposition"] = exported.disposition()
    return response


@blueprint.post("/subjects/erasure")
@requires("subject:manage")
def erase_subject() -> ResponseReturnValue:
    """Erase a subject: destroy every data key of theirs (409 under legal hold)."""
    body = _body(("subject_id", "reason"))
    erased = services().subjects.erase(_caller(), _text(body, "subject_id"), _text(body, "reason"))
    return jsonify(rep.erasure(erased))


@blueprint.post("/subjects/status")
@requires("subject:manage")
def subject_status() -> ResponseReturnValue:
    """What is held about a subject (keys, holds, requests), nothing decrypted."""
    body = _body(("subject_id",))
    cofre = services()
    with cofre.read() as session:
        pseudonym = cofre.audit.pseudonym(_text(body, "subject_id"))
        return jsonify(rep.subject_status(cofre.subjects.status(session, pseudonym)))


@blueprint.post("/subjects/holds")
@requires("subject:manage")
def hold_subject() -> ResponseReturnValue:
    """Place a legal hold: no erasure, no retention shredding until it is released."""
    body = _body(("subject_id", "reason"))
    hold = services().subjects.hold(_caller(), _text(body, "subject_id"), _text(body, "reason"))
    return jsonify(rep.subject_hold(hold)), 201


@blueprint.post("/subjects/holds/release")
@requires("subject:manage")
def release_subject() -> ResponseReturnValue:
    """Release a subject's legal hold."""
    body = _body(("subject_id",))
    return jsonify(
        rep.subject_hold(services().subjects.release(_caller(), _text(body, "subject_id")))
    )


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
    body = _body(("row", "reason"))
    opened = services().reviews.open(_caller(), request_id, body["row"], _text(body, "reason"))
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
        found = cofre.reviews.listing(session, current_actor(), request.args.get("status") or None)
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
    body = _body(("outcome", "reason"), ("corrected_output",))
    decided = services().reviews.decide(
        _caller(),
        review_id,
        _text(body, "outcome"),
        _text(body, "reason"),
        body.get("corrected_output"),
    )
    return jsonify(decided.as_dict())
