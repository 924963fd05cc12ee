"""JSON endpoints of the audit log: records, verification, checkpoints, exports."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput
from server.exports import audit_file
from server.extension import services
from server.security.access import current_actor, requires

blueprint = Blueprint("api_audit", __name__, url_prefix="/api/v1/audit")


@blueprint.get("/head")
@requires("audit:read")
def head() -> ResponseReturnValue:
    """The newest record's sequence number and hash."""
    cofre = services()
    with cofre.read() as session:
        seq, head_hash = cofre.audit.head(session)
        return jsonify(seq=seq, hash=head_hash)


@blueprint.get("/requests/<request_id>")
@requires("audit:read")
def by_request(request_id: str) -> ResponseReturnValue:
    """The records of one request, personal data decrypted (the disclosure is audited)."""
    cofre = services()
    with cofre.write() as session:
        records = cofre.audit.by_request(session, current_actor(), request_id)
        return _disclosed(session, records, subject="")


@blueprint.post("/subjects/export")
@requires("audit:export")
def subject_export() -> ResponseReturnValue:
    """Every record about one subject, only their rows (the id travels in the body)."""
    cofre = services()
    subject_id = _subject_id(request.get_json(silent=True))
    with cofre.write() as session:
        records = cofre.audit.by_subject(session, current_actor(), subject_id)
        return _disclosed(session, records, subject=cofre.audit.pseudonym(subject_id))


def _disclosed(session: Any, records: list[Any], subject: str) -> ResponseReturnValue:
    disclosed = services().disclosures.export(
        session, current_actor(), records, "json", subject, g.request_id, endpoint="api"
    )
    exported = audit_file(disclosed, "json")
    return Response(exported.body, mimetype=exported.mimetype)


@blueprint.post("/verify")
@requires("audit:verify")
def verify() -> ResponseReturnValue:
    """Recompute the chain; optional body: an exported checkpoint."""
    cofre = services()
    checkpoint = request.get_json(silent=True) if request.data else None
    with cofre.read() as session:
        report = cofre.audit.verify(session, checkpoint if isinstance(checkpoint, dict) else None)
    return jsonify(report.as_dict()), 200 if report.ok else 409


@blueprint.post("/checkpoints")
@requires("audit:verify")
def sign_checkpoint() -> ResponseReturnValue:
    """Sign the current head once the chain verifies; the answer is the exportable checkpoint."""
    cofre = services()
    checkpoint, _ = cofre.checkpoints.sign_verified()
    return jsonify(cofre.audit.export_checkpoint(checkpoint)), 201


@blueprint.get("/checkpoints/latest")
@requires("audit:read")
def latest_checkpoint() -> ResponseReturnValue:
    """The newest signed checkpoint."""
    cofre = services()
    with cofre.read() as session:
        checkpoint = cofre.audit.latest_checkpoint(session)
        if checkpoint is None:
            return jsonify(checkpoint=None)
        return jsonify(checkpoint=cofre.audit.export_checkpoint(checkpoint))


def _subject_id(body: Any) -> str:
    value = body.get("subject_id") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise InvalidInput("subject_id is required", [FieldError("subject_id", "is required")])
    return value
