"""JSON endpoints of the model registry: list, show, diff, publish, compile, verify, alias,
roll back, deprecate, retire, and a model's lifecycle history and a version's callers."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput, UnsupportedMediaType
from governance.identifiers import parse_id
from governance.registry.retirement import parse_sunset
from governance.registry.service import ModelCard, PublishRequest
from governance.rollouts.approvals import as_dict as promotion_as_dict
from server import representations as rep
from server.extension import services
from server.http.bodies import (
    form_bool,
    form_json_list,
    json_fields,
    json_object,
    required_int,
    required_text,
    uploaded_reference,
)
from server.security.access import current_actor, requires

blueprint = Blueprint("api_models", __name__, url_prefix="/api/v1/models")


@blueprint.get("")
@requires("model:read")
def list_models() -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        models = cofre.registry.models(session, current_actor())
        return jsonify(models=[rep.model_summary(m) for m in models])


@blueprint.get("/<name>")
@requires("model:read")
def show_model(name: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        return jsonify(rep.model_detail(cofre.registry.model(session, name)))


@blueprint.get("/<name>/versions/<int:version>")
@requires("model:read")
def show_version(name: str, version: int) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        return jsonify(rep.version_detail(cofre.registry.resolve(session, name, version=version)))


@blueprint.get("/<name>/diff")
@requires("model:read")
def diff_versions(name: str) -> ResponseReturnValue:
    """What changed from version `from` to version `to`: parameters, features, data."""
    first, second = _version_arg("from"), _version_arg("to")
    cofre = services()
    with cofre.read() as session:
        return jsonify(cofre.registry.diff(session, current_actor(), name, first, second))


@blueprint.post("/<name>/versions/<int:version>/verify")
@requires("model:publish")
def verify_version(name: str, version: int) -> ResponseReturnValue:
    """Check a version again under the running scikit-learn; 409 with the report if not."""
    cofre = services()
    with cofre.read() as session:  # loading and comparing is slow: before the write lock
        check = cofre.registry.check_version(session, current_actor(), name, version)
    with cofre.write() as session:
        cofre.registry.record_verification(session, current_actor(), check)
    return jsonify(rep.version_check(check)), 200 if check.passed else 409


def _version_arg(name: str) -> int:
    version = parse_id(request.args.get(name, ""))
    if version is None:
        raise InvalidInput(
            f"give the query parameter {name}", [FieldError(name, "a version number")]
        )
    return version


@blueprint.post("/<name>/versions")
@requires("model:publish")
def publish_version(name: str) -> ResponseReturnValue:
    cofre = services()
    request.max_content_length = cofre.settings.max_artifact_bytes
    publish = _publish_request(name)
    cofre.promotions.check_publish_aliases(publish.aliases)
    prepared = cofre.registry.prepare(current_actor(), publish)  # before the lock
    with cofre.write() as session:
        version = cofre.registry.publish(session, current_actor(), prepared)
        return jsonify(rep.version_detail(version)), 201


@blueprint.post("/<name>/versions/<int:version>/compile")
@requires("model:publish")
def compile_version(name: str, version: int) -> ResponseReturnValue:
    cofre = services()
    runtime = str(json_object().get("runtime", "auto")) if request.content_length else "auto"
    with cofre.read() as session:  # the slow part, before the write lock
        attempt = cofre.registry.prepare_compile(session, current_actor(), name, version, runtime)
    with cofre.write() as session:
        compiled = cofre.registry.compile(session, current_actor(), name, version, runtime, attempt)
        return jsonify(rep.version_detail(compiled))


def _publish_request(name: str) -> PublishRequest:
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("send multipart/form-data with the skops file as 'file'")
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput("the skops file is missing", [FieldError("file", "is required")])
    form = request.form
    card = ModelCard(
        purpose=form.get("purpose", ""),
        legal_basis=form.get("legal_basis", ""),
        description=form.get("description", ""),
        decision_mode=form.get("decision_mode", "human-reviewed"),
        owner=form.get("owner", ""),
        retention_days=_optional_days(form.get("retention_days", "")),
        recipients=form.get("recipients", ""),
    )
    aliases = [a for a in form.getlist("alias") if a]
    return PublishRequest(
        name=name,
        artifact=upload.read(),
        card=card,
        features=form_json_list("features"),
        allow_missing=form_bool("allow_missing"),
        aliases=aliases,
        signature=_signature_upload(),
        reference=uploaded_reference(),
        runtime=form.get("runtime", "auto"),
        allow_duplicate=form_bool("allow_duplicate"),
        note=form.get("note", ""),
    )


def _signature_upload() -> bytes | None:
    """The optional detached signature, as a second file part named 'signature'."""
    upload = request.files.get("signature")
    return upload.read() if upload is not None and upload.filename else None


def _optional_days(text: str) -> int | None:
    if not text.strip():
        return None
    days = parse_id(text.strip())
    if days is None:
        raise InvalidInput(
            "retention_days must be a number of days", [FieldError("retention_days", "days")]
        )
    return days


@blueprint.get("/<name>/aliases")
@requires("model:read")
def alias_history(name: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.read() as session:
        model = cofre.registry.model(session, name)
        history = cofre.registry.alias_history(session, name)
        return jsonify(
            aliases={a.name: a.version for a in model.aliases},
            history=[rep.alias_move(h) for h in history],
        )


@blueprint.put("/<name>/aliases/<alias>")
@requires("model:alias")
def set_alias(name: str, alias: str) -> ResponseReturnValue:
    cofre = services()
    version = required_int(json_fields(("version",)), "version")
    with cofre.write() as session:
        moved = cofre.promotions.set_alias(session, current_actor(), name, version, alias)
        if moved.pending:  # four-eyes: another person approves it
            return jsonify(promotion_as_dict(moved.pending)), 202
        return jsonify(name=name, alias=moved.alias, version=moved.version)


@blueprint.post("/<name>/aliases/<alias>/rollback")
@requires("model:alias")
def rollback_alias(name: str, alias: str) -> ResponseReturnValue:
    cofre = services()
    with cofre.write() as session:
        moved = cofre.registry.rollback(session, current_actor(), name, alias)
        return jsonify(name=name, alias=moved.name, version=moved.version)


@blueprint.post("/<name>/versions/<int:version>/deprecate")
@requires("model:publish")
def deprecate_version(name: str, version: int) -> ResponseReturnValue:
    """Deprecate a version: it answers until `sunset` with Deprecation and Sunset headers,
    then 410 naming its successor."""
    body = json_fields(("sunset", "reason"))
    sunset = parse_sunset(required_text(body, "sunset"))
    reason = required_text(body, "reason")
    cofre = services()
    with cofre.write() as session:
        cofre.retirements.deprecate(session, current_actor(), name, version, sunset, reason)
        record = cofre.registry.resolve(session, name, version=version)
        return jsonify(rep.retirement_detail(record))


@blueprint.post("/<name>/versions/<int:version>/retire")
@requires("model:publish")
def retire_version(name: str, version: int) -> ResponseReturnValue:
    """Retire a version: 410 at once; its encrypted artifact is kept until the card's
    retention has passed, then shredded by the retention job."""
    cofre = services()
    with cofre.write() as session:
        cofre.retirements.retire(session, current_actor(), name, version)
        record = cofre.registry.resolve(session, name, version=version)
        return jsonify(rep.retirement_detail(record))


@blueprint.get("/<name>/lifecycle")
@requires("model:read")
def lifecycle_history(name: str) -> ResponseReturnValue:
    """Every step of the model's life: publishes, alias moves, deprecations, retirements."""
    cofre = services()
    with cofre.read() as session:
        current_actor().check_model(name)
        steps = cofre.retirements.history(session, name)
        return jsonify(history=[rep.lifecycle_step(s) for s in steps])


@blueprint.get("/<name>/versions/<int:version>/callers")
@requires("model:read")
def version_callers(name: str, version: int) -> ResponseReturnValue:
    """Who called the version (since its deprecation, when deprecated), by key."""
    cofre = services()
    with cofre.read() as session:
        current_actor().check_model(name)
        callers = cofre.retirements.callers(session, name, version)
        return jsonify(callers=[rep.key_caller(c) for c in callers])
