"""Registry use cases: publish, compile, verify, resolve, alias, roll back, describe.

Each use case runs in the caller's transaction and appends its audit event
there, so a version, its compiled model, an alias move and their records commit
together.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session, object_session

from governance.accounts.actor import SYSTEM, Actor
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import utcnow
from governance.crypto.keyring import WrappedKey
from governance.db import after_commit, undo_on_rollback
from governance.errors import CofreError, Conflict, FieldError, InvalidInput, NotFound
from governance.monitoring.delivery import lifecycle_row
from governance.monitoring.profiles import (
    Profiles,
    ReferenceData,
    estimator_input,
    read_reference,
)
from governance.provenance.service import Origin, Provenance, SignatureCheck
from governance.registry import compiled, lifecycle, retirement
from governance.registry.artifacts import ONNX, ArtifactStore
from governance.registry.loading import EstimatorFacts, describe, load_trusted
from governance.registry.records import (
    Alias,
    AliasHistory,
    Compilation,
    ModelVersion,
    RegisteredModel,
    VersionFacts,
    VersionVerification,
)

DTYPES = ("float64", "int64", "bool", "string")
DECISION_MODES = ("automated", "human-reviewed")
DEFAULT_ALIAS = "production"
_ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
# Names travel in URL paths and in `NAME@ALIAS` / `NAME:VERSION` references, so no
# '/', '@', ':' or spaces: one path segment, never ambiguous.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_NOTE = 4000


@dataclass(frozen=True)
class ModelCard:
    """What a regulator asks of a model: why it exists and who answers for it."""

    purpose: str
    legal_basis: str
    description: str = ""
    decision_mode: str = "human-reviewed"
    owner: str = ""
    retention_days: int | None = None  # None: the appliance's default period
    recipients: str = ""  # who receives the decisions (GDPR Art. 30(1)(d))

    def problems(self) -> list[FieldError]:
        found = [
            FieldError(name, "is required")
            for name in ("purpose", "legal_basis")
            if not getattr(self, name).strip()
        ]
        if self.decision_mode not in DECISION_MODES:
            found.append(FieldError("decision_mode", f"must be one of {', '.join(DECISION_MODES)}"))
        days = self.retention_days
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            found.append(FieldError("retention_days", "a whole number of days, at least 1"))
        return found


@dataclass(frozen=True)
class PublishRequest:
    name: str
    artifact: bytes
    card: ModelCard
    features: list[dict[str, str]] | None = None  # optional declared schema
    allow_missing: bool = False
    aliases: list[str] = field(default_factory=list)
    signature: bytes | None = None  # a detached model-signing signature of `artifact`
    origin: Origin | None = None  # where it comes from (an MLflow run, a bundle)
    # The data the version learnt from (or like it): drift is measured against it.
    reference: ReferenceData | None = None
    # A byte-identical artifact is refused (Conflict naming its version) unless asked.
    allow_duplicate: bool = False
    # "auto": served by ONNX Runtime once proven equal; "onnx": that or no publish;
    # "sklearn": never compiled.
    runtime: str = "auto"
    # Library versions it was trained with (`lifecycle.parse_requirements`); what the
    # skops file itself records wins over them.
    requirements: dict[str, str] = field(default_factory=dict)
    note: str = ""  # the publisher's word on what changed, kept with the changelog


@dataclass(frozen=True)
class CompiledExport:
    model: bytes
    manifest: dict[str, Any]


@dataclass(frozen=True)
class VersionCheck:
    """A published version checked again under the running scikit-learn: the publish
    checks, and its outputs compared with its reference sample's (recorded at publish)
    or, for a version published before samples were kept, its proven ONNX model's."""

    name: str
    version: int
    sklearn_version: str  # running
    trained_with: str | None
    problems: list[str]
    comparison: dict[str, Any]

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PreparedPublish:
    """A publish request checked, described and compiled, ready for its transaction."""

    request: PublishRequest
    facts: EstimatorFacts
    features: list[dict[str, str]]
    compilation: compiled.Compilation
    sample: dict[str, Any] | None = None  # lifecycle.reference_sample


class Registry:
    """Registry use cases over an artifact store and the audit log."""

    def __init__(
        self,
        store: ArtifactStore,
        audit: AuditLog,
        default_retention_days: int = 365,
        provenance: Provenance | None = None,
        profiles: Profiles | None = None,
        running_sklearn: str = lifecycle.RUNNING_SKLEARN,
        lifecycle_webhook: bool = False,
    ) -> None:
        self.store = store
        self.audit = audit
        self.default_retention_days = default_retention_days
        self.provenance = provenance
        self.profiles = profiles or Profiles()
        self.running_sklearn = running_sklearn
        # Whether lifecycle events (publish, alias moves, deprecate, retire) go to the
        # configured webhook, through the alert outbox.
        self.lifecycle_webhook = lifecycle_webhook

    def announce(self, session: Session, event: str, details: dict[str, Any]) -> None:
        """Queue a lifecycle event for the webhook, in the caller's transaction (so it
        goes out only if the change commits)."""
        if self.lifecycle_webhook:
            session.add(lifecycle_row(event, details))

    # -- publish -------------------------------------------------------------------
    def prepare(self, actor: Actor, request: PublishRequest) -> PreparedPublish:
        """Check, describe and compile a publish request: all of it without the database.

        Callers run it before their write transaction: converting and proving a large
        ensemble takes seconds, and on SQLite the write lock held meanwhile would
        stall every worker's audit appends."""
        check_model_name(request.name)
        actor.check_model(request.name)
        check_runtime(request.runtime)
        problems = request.card.problems()
        if problems:
            raise InvalidInput("the model card is incomplete", problems)
        if len(request.note) > MAX_NOTE:
            raise InvalidInput(
                "the note is too long", [FieldError("note", f"at most {MAX_NOTE} characters")]
            )
        facts = describe(request.artifact)
        features = feature_schema(facts, request.features)
        attempt = attempt_compilation(
            facts.estimator,
            features,
            facts.classes,
            has_proba=facts.has_proba,
            allow_missing=request.allow_missing,
            runtime=request.runtime,
            reference=_proof_rows(request.reference, features),
        )
        sample = lifecycle.reference_sample(
            facts.estimator, features, request.allow_missing, facts.has_proba
        )
        return PreparedPublish(request, facts, features, attempt, sample)

    def publish(
        self, session: Session, actor: Actor, request: PublishRequest | PreparedPublish
    ) -> ModelVersion:
        """The next version of a model, compiled when proven equal (prepared before the
        transaction by `prepare`, or here)."""
        prepared = request if isinstance(request, PreparedPublish) else self.prepare(actor, request)
        request, facts, features = prepared.request, prepared.facts, prepared.features
        actor.check_model(request.name)  # prepared by whoever: this actor publishes it
        signed = self._check_signature(session, request)
        model = self._model_for_publish(session, request.name)
        if not request.allow_duplicate:
            _refuse_duplicate(model, request.artifact)
        version = 1 + max((v.version for v in model.versions), default=0)
        made = _version_facts(model, version, request, facts, features)
        made.sample = prepared.sample
        file_name, sha, wrapped = self.store.put(request.name, version, request.artifact)
        # Whatever fails from here on (this method, the caller's later steps, the
        # commit) rolls the transaction back, and the rollback removes the file.
        undo_on_rollback(session, lambda: self.store.remove(file_name))
        try:
            record = self._add_version(
                session,
                actor,
                model,
                (version, made),
                request,
                facts,
                features,
                (file_name, sha, wrapped),
            )
            if signed is not None and self.provenance is not None:
                self.provenance.record(session, actor, record, signed)
            if request.origin is not None and self.provenance is not None:
                self.provenance.record_origin(session, actor, record, request.origin)
            if request.reference is not None:
                self.profiles.from_reference(
                    session,
                    request.name,
                    version,
                    (features, facts.feature_names is not None, facts.classes is not None),
                    facts.estimator,
                    request.reference,
                )
            self._record_attempt(session, actor, record, request.runtime, prepared.compilation)
            for alias in request.aliases:
                self.set_alias(session, actor, request.name, version, alias)
            session.flush()
        except DBIntegrityError:
            raise Conflict(
                f"model {request.name!r} got another version at the same time; retry"
            ) from None
        return record

    def _check_signature(self, session: Session, request: PublishRequest) -> SignatureCheck | None:
        if self.provenance is None:
            return None
        sha = hashlib.sha256(request.artifact).hexdigest()
        return self.provenance.check_publish(session, sha, request.signature)

    def _model_for_publish(self, session: Session, name: str) -> RegisteredModel:
        model = session.scalars(select(RegisteredModel).where(RegisteredModel.name == name)).first()
        if model is None:
            model = RegisteredModel(name=name, created_at=utcnow())
            session.add(model)
            try:
                session.flush()
            except DBIntegrityError:
                raise Conflict(f"model {name!r} was created at the same time; retry") from None
        return model

    def _add_version(
        self,
        session: Session,
        actor: Actor,
        model: RegisteredModel,
        numbered: tuple[int, VersionFacts],
        request: PublishRequest,
        facts: EstimatorFacts,
        features: list[dict[str, str]],
        stored: tuple[str, str, WrappedKey],
    ) -> ModelVersion:
        file_name, sha, wrapped = stored
        version, made = numbered
        card = request.card
        record = ModelVersion(
            model=model,
            version=version,
            sha256=sha,
            size=len(request.artifact),
            artifact_file=file_name,
            kek_id=wrapped.kek_id,
            wrapped_key=wrapped.blob,
            features=features,
            named_features=facts.feature_names is not None,
            has_proba=facts.has_proba,
            classes=facts.classes,
            allow_missing=request.allow_missing,
            estimator_type=facts.estimator_type,
            sklearn_version=facts.sklearn_version,
            published_by=actor.name,
            published_at=utcnow(),
            description=card.description,
            purpose=card.purpose,
            legal_basis=card.legal_basis,
            decision_mode=card.decision_mode,
            owner=card.owner,
            retention_days=card.retention_days or self.default_retention_days,
            recipients=card.recipients,
            facts=made,
        )
        session.add(record)
        session.flush()
        self.audit.append(
            session,
            AuditEvent(
                kind="model.published",
                actor=actor,
                model_name=model.name,
                model_version=version,
                artifact_sha256=sha,
                purpose=card.purpose,
                details={
                    "size": len(request.artifact),
                    "estimator": facts.estimator_type,
                    "legal_basis": card.legal_basis,
                    "decision_mode": card.decision_mode,
                    "retention_days": record.retention_days,
                    "reference_data": request.reference is not None,
                    "changes": _change_summary(made.changelog),
                },
            ),
        )
        self.announce(
            session,
            "published",
            {"model": model.name, "version": version, "actor": actor.name, "sha256": sha},
        )
        return record

    # -- verification under the running scikit-learn ------------------------------------
    def check_version(
        self, session: Session, actor: Actor, name: str, version: int
    ) -> VersionCheck:
        """Run the publish checks again on a stored version under the scikit-learn
        running here, and compare the estimator's answers with those in its reference
        sample or, without one, with its proven ONNX model's (proven equal to the
        estimator as it was at publish). Read-only and slow: run it before the write
        transaction."""
        actor.check_model(name)
        record = self.resolve(session, name, version=version)
        self.verify_provenance(session, record)
        problems: list[str] = []
        comparison: dict[str, Any] = {"against": None}
        sample = record.facts.sample if record.facts is not None else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator = self._recheck(record, problems)
            if estimator is not None and not problems and sample is not None:
                comparison = self._compare_with_sample(record, estimator, sample, problems)
            elif estimator is not None and not problems and record.runtime == "onnx":
                comparison = self._compare_with_onnx(record, estimator, problems)
        comparison["warnings"] = sorted({_first_line(str(w.message)) for w in caught})
        return VersionCheck(
            name, version, self.running_sklearn, record.sklearn_version, problems, comparison
        )

    def _recheck(self, record: ModelVersion, problems: list[str]) -> Any:
        """The publish checks (trusted types, a fitted estimator, the recorded schema,
        classes and probabilities): the estimator, or None with the problems noted."""
        try:
            facts = describe(self.load_plaintext(record))
            feature_schema(facts, record.features)
        except CofreError as exc:
            problems.append(exc.detail)
            return None
        if facts.classes != record.classes:
            problems.append(f"its classes are now {facts.classes}, recorded {record.classes}")
        if facts.has_proba != record.has_proba:
            problems.append("it no longer answers probabilities as recorded")
        return facts.estimator

    def _compare_with_sample(
        self, record: ModelVersion, estimator: Any, sample: dict[str, Any], problems: list[str]
    ) -> dict[str, Any]:
        classifier = record.classes is not None
        try:
            figures, found = lifecycle.compare_sample(
                estimator, sample, record.features, classifier
            )
        except Exception as exc:  # an estimator that no longer runs is the finding
            problems.append(f"it could not answer its reference sample ({type(exc).__name__})")
            return {"against": "sample"}
        problems.extend(found)
        return figures

    def _compare_with_onnx(
        self, record: ModelVersion, estimator: Any, problems: list[str]
    ) -> dict[str, Any]:
        names = [f["name"] for f in record.features]
        try:
            model = compiled.CompiledEstimator(self.load_compiled(record), record.classes)
            sample = compiled.generated_sample(estimator, len(names), record.allow_missing)
            proof = compiled.prove(estimator, model, sample, "generated", names, record.has_proba)
        except CofreError:
            raise
        except Exception as exc:  # an estimator that no longer runs is the finding
            problems.append(f"it could not be compared with its ONNX model ({type(exc).__name__})")
            return {"against": "onnx"}
        if not proof.passed:
            problems.append(f"its outputs differ from its proven ONNX model's: {proof.reason}")
        return {
            "against": "onnx",
            "rows": proof.rows,
            "sample": proof.sample,
            "label_mismatches": proof.label_mismatches,
            "max_proba_diff": proof.max_proba_diff,
            "max_relative_diff": proof.max_relative_diff,
        }

    def record_verification(
        self, session: Session, actor: Actor, check: VersionCheck
    ) -> VersionVerification | None:
        """Audit a check made by `check_version`; a passed one is recorded, and lets
        the version load under this scikit-learn minor version."""
        actor.check_model(check.name)
        record = self.resolve(session, check.name, version=check.version)
        row = None
        if check.passed:
            row = VersionVerification(
                model_version=record,
                sklearn_version=check.sklearn_version,
                comparison=check.comparison,
                verified_by=actor.name,
                verified_at=utcnow(),
            )
            session.add(row)
        self.audit.append(
            session,
            AuditEvent(
                kind="model.verified" if check.passed else "model.verification_failed",
                actor=actor,
                model_name=check.name,
                model_version=check.version,
                artifact_sha256=record.sha256,
                details={
                    "sklearn_version": check.sklearn_version,
                    "trained_with": check.trained_with,
                    "problems": [p[:300] for p in check.problems],
                    "comparison": _hashable(
                        {k: v for k, v in check.comparison.items() if k != "warnings"}
                    ),
                },
            ),
        )
        session.flush()
        return row

    def diff(self, session: Session, actor: Actor, name: str, a: int, b: int) -> dict[str, Any]:
        """What changed from version `a` of a model to version `b`, as a publish's
        changelog says it, with the note `b` was published with."""
        actor.check_model(name)
        before = self.resolve(session, name, version=a)
        after = self.resolve(session, name, version=b)
        note = after.facts.note if after.facts is not None else None
        return lifecycle.changelog(lifecycle.made(before), lifecycle.made(after)) | {"note": note}

    def unverified(self, session: Session) -> list[ModelVersion]:
        """Every version refused at load here: trained under another scikit-learn
        minor version and not verified under the running one."""
        return [
            version
            for model in self.models(session, SYSTEM)
            for version in model.versions
            if self.load_refusal(version) is not None
        ]

    def load_refusal(self, version: ModelVersion) -> str | None:
        """Why `version` would be refused at load here (one line), or None."""
        return lifecycle.load_refusal(version, self.running_sklearn)

    def refuse_unverified(self, version: ModelVersion) -> None:
        """Before any load: Unverified, with the one-line reason, for a version trained
        under another scikit-learn minor version and not verified under this one."""
        lifecycle.refuse_unverified(version, self.running_sklearn)

    # -- compiled inference -------------------------------------------------------------
    def prepare_compile(
        self, session: Session, actor: Actor, name: str, version: int, runtime: str = "auto"
    ) -> compiled.Compilation:
        """Convert and prove a published version in a read session (the slow part, kept
        out of the write transaction; versions are immutable, so it stays true)."""
        actor.check_model(name)
        check_runtime(runtime)
        record = self.resolve(session, name, version=version)
        return attempt_compilation(
            self.load_estimator(record),
            record.features,
            record.classes,
            has_proba=record.has_proba,
            allow_missing=record.allow_missing,
            runtime=runtime,
        )

    def compile(
        self,
        session: Session,
        actor: Actor,
        name: str,
        version: int,
        runtime: str = "auto",
        attempt: compiled.Compilation | None = None,
    ) -> ModelVersion:
        """Compile (again) a published version and serve it from ONNX once proven equal;
        the version itself, its artifact and its hash do not change. `attempt` comes
        from `prepare_compile`, else it is made here."""
        actor.check_model(name)
        check_runtime(runtime)
        if attempt is None:
            attempt = self.prepare_compile(session, actor, name, version, runtime)
        record = self.resolve(session, name, version=version)
        self._record_attempt(session, actor, record, runtime, attempt)
        session.flush()
        return record

    def _record_attempt(
        self,
        session: Session,
        actor: Actor,
        record: ModelVersion,
        runtime: str,
        attempt: compiled.Compilation,
    ) -> Compilation:
        """Store the compiled model (or why there is none) and audit the attempt."""
        row = self._record_compilation(session, actor, record, runtime, attempt)
        self.audit.append(
            session,
            AuditEvent(
                kind="model.compiled",
                actor=actor,
                model_name=record.model.name,
                model_version=record.version,
                artifact_sha256=record.sha256,
                details={
                    "runtime": row.runtime,
                    "requested": runtime,
                    "reason": row.reason,
                    "onnx_sha256": row.sha256,
                    "proof": _hashable(row.proof),
                },
            ),
        )
        return row

    def _record_compilation(
        self,
        session: Session,
        actor: Actor,
        record: ModelVersion,
        requested: str,
        attempt: compiled.Compilation,
    ) -> Compilation:
        row = record.compilation or Compilation(model_version=record)
        row.requested, row.compiled_by, row.compiled_at = requested, actor.name, utcnow()
        row.proof = attempt.proof.as_dict() if attempt.proof is not None else None
        row.runtime = "onnx" if attempt.proven else "sklearn"
        row.reason = attempt.reason
        model = attempt.model if attempt.proven else None
        if model is None or hashlib.sha256(model).hexdigest() != row.sha256:
            # A new model replaces the stored one (an identical one is kept as it is,
            # so workers that resolved the version a moment ago still find its file).
            self._replace_compiled_file(session, record, row, model)
        session.add(row)
        session.flush()
        return row

    def _replace_compiled_file(
        self, session: Session, record: ModelVersion, row: Compilation, model: bytes | None
    ) -> None:
        replaced = row.artifact_file
        row.sha256 = row.size = row.artifact_file = row.kek_id = row.wrapped_key = None
        if model is not None:
            file_name, sha, wrapped = self.store.put(record.model.name, record.version, model, ONNX)
            undo_on_rollback(session, lambda: self.store.remove(file_name))
            row.sha256, row.size, row.artifact_file = sha, len(model), file_name
            row.kek_id, row.wrapped_key = wrapped.kek_id, wrapped.blob
        if replaced:  # the earlier compiled file goes once the new row is durable
            after_commit(session, lambda: self.store.remove(replaced))

    def load_compiled(self, version: ModelVersion) -> bytes:
        """The proven ONNX model's bytes, decrypted in memory and checked."""
        row = version.compilation
        if row is None or row.runtime != "onnx" or row.artifact_file is None:
            raise NotFound(
                f"model {version.model.name!r} version {version.version} has no proven ONNX model"
            )
        return self.store.get(
            version.model.name,
            version.version,
            row.sha256 or "",
            row.artifact_file,
            WrappedKey(row.kek_id or "", row.wrapped_key or b""),
            ONNX,
        )

    def export_compiled(
        self, session: Session, actor: Actor, name: str, version: int
    ) -> CompiledExport:
        """The proven ONNX model and its manifest (schema, hashes, the proof), for a
        device that runs it outside the appliance; an audit event in the caller's
        transaction, so a failed write of the files records no export."""
        actor.check_model(name)
        record = self.resolve(session, name, version=version)
        model = self.load_compiled(record)
        manifest = compiled_manifest(record, compiled.graph_outputs(model))
        self.audit.append(
            session,
            AuditEvent(
                kind="model.exported",
                actor=actor,
                model_name=name,
                model_version=version,
                artifact_sha256=record.sha256,
                details={"format": "onnx", "onnx_sha256": manifest["onnx"]["sha256"]},
            ),
        )
        return CompiledExport(model, manifest)

    # -- reading ----------------------------------------------------------------------
    def models(self, session: Session, actor: Actor) -> list[RegisteredModel]:
        """The models `actor` may act on: a key limited to some models sees only those
        (the others' names, purposes and owners are not its business either)."""
        stmt = select(RegisteredModel).order_by(RegisteredModel.name)
        if actor.models is not None:
            stmt = stmt.where(RegisteredModel.name.in_(actor.models))
        return list(session.scalars(stmt))

    def model(self, session: Session, name: str) -> RegisteredModel:
        model = session.scalars(select(RegisteredModel).where(RegisteredModel.name == name)).first()
        if model is None:
            raise NotFound(f"no model named {name!r}")
        return model

    def resolve(
        self, session: Session, name: str, *, alias: str | None = None, version: int | None = None
    ) -> ModelVersion:
        """The version a caller means: an explicit version, else an alias (production)."""
        model = self.model(session, name)
        if version is None:
            wanted = alias or DEFAULT_ALIAS
            target = next((a for a in model.aliases if a.name == wanted), None)
            if target is None:
                raise NotFound(f"model {name!r} has no alias {wanted!r}")
            version = target.version
        found = next((v for v in model.versions if v.version == version), None)
        if found is None:
            raise NotFound(f"model {name!r} has no version {version}")
        return found

    def alias_history(self, session: Session, name: str) -> list[AliasHistory]:
        model = self.model(session, name)
        stmt = (
            select(AliasHistory).where(AliasHistory.model_id == model.id).order_by(AliasHistory.id)
        )
        return list(session.scalars(stmt))

    def load_plaintext(self, version: ModelVersion) -> bytes:
        return self.store.get(
            version.model.name,
            version.version,
            version.sha256,
            version.artifact_file,
            WrappedKey(version.kek_id, version.wrapped_key),
        )

    def check_artifact(self, version: ModelVersion) -> None:
        """Readiness: the artifact (and the compiled model) authenticates (decrypts,
        matches its SHA-256); cached by the stored bytes' identity, so a probe is cheap
        while nothing changed."""
        self.store.check(
            version.model.name,
            version.version,
            version.sha256,
            version.artifact_file,
            WrappedKey(version.kek_id, version.wrapped_key),
        )
        row = version.compilation
        if row is not None and row.artifact_file is not None:
            self.store.check(
                version.model.name,
                version.version,
                row.sha256 or "",
                row.artifact_file,
                WrappedKey(row.kek_id or "", row.wrapped_key or b""),
                ONNX,
            )

    def load_estimator(self, version: ModelVersion) -> Any:
        """Check its signature, decrypt in memory, check the hash, load with trusted
        types only."""
        session = object_session(version)
        if session is not None:
            self.verify_provenance(session, version)
        self.refuse_unverified(version)
        return load_trusted(self.load_plaintext(version))

    def verify_provenance(self, session: Session, version: ModelVersion) -> str | None:
        """Before any load: the signer still vouching for `version` (None if unsigned
        and allowed); IntegrityError when its signature no longer verifies."""
        if self.provenance is None:
            return None
        return self.provenance.verify_for_load(session, version)

    # -- aliases ------------------------------------------------------------------------
    def set_alias(
        self, session: Session, actor: Actor, name: str, version: int, alias: str
    ) -> Alias:
        check_alias_name(alias)
        actor.check_model(name)
        model = self.model(session, name)
        if not any(v.version == version for v in model.versions):
            raise NotFound(f"model {name!r} has no version {version}")
        return self._move(session, actor, model, alias, version, "set")

    def rollback(self, session: Session, actor: Actor, name: str, alias: str) -> Alias:
        """Point `alias` back at the target it had before its latest move."""
        actor.check_model(name)
        model = self.model(session, name)
        previous = self._previous_target(session, model, alias)
        if previous is None:
            raise Conflict(f"alias {alias!r} of {name!r} has no earlier target to roll back to")
        return self._move(session, actor, model, alias, previous, "rollback")

    def _previous_target(self, session: Session, model: RegisteredModel, alias: str) -> int | None:
        # Replay the history as a stack: a move pushes the old target, a rollback pops it,
        # so repeated rollbacks walk further back instead of toggling.
        stack: list[int | None] = []
        stmt = (
            select(AliasHistory)
            .where(AliasHistory.model_id == model.id, AliasHistory.alias == alias)
            .order_by(AliasHistory.id)
        )
        for entry in session.scalars(stmt):
            if entry.action == "set":
                stack.append(entry.from_version)
            elif stack:
                stack.pop()
        if not any(a.name == alias for a in model.aliases):
            raise NotFound(f"model {model.name!r} has no alias {alias!r}")
        return stack[-1] if stack else None

    def _move(
        self,
        session: Session,
        actor: Actor,
        model: RegisteredModel,
        alias: str,
        version: int,
        action: str,
    ) -> Alias:
        target = next(v for v in model.versions if v.version == version)
        retirement.refuse_alias_move(target, alias)
        current = next((a for a in model.aliases if a.name == alias), None)
        before = current.version if current else None
        if current is None:
            current = Alias(
                model=model, name=alias, version=version, updated_at=utcnow(), updated_by=actor.name
            )
            session.add(current)
        current.version, current.updated_at, current.updated_by = version, utcnow(), actor.name
        session.add(
            AliasHistory(
                model_id=model.id,
                alias=alias,
                from_version=before,
                to_version=version,
                action=action,
                actor=actor.name,
                at=utcnow(),
            )
        )
        self.audit.append(
            session,
            AuditEvent(
                kind="alias.rolled_back" if action == "rollback" else "alias.moved",
                actor=actor,
                model_name=model.name,
                model_version=version,
                artifact_sha256=target.sha256,
                details={"alias": alias, "from_version": before, "to_version": version},
            ),
        )
        self.announce(
            session,
            "rolled_back" if action == "rollback" else "promoted",
            {"model": model.name, "version": version, "actor": actor.name}
            | {"alias": alias, "from_version": before},
        )
        session.flush()
        return current


def _version_facts(
    model: RegisteredModel,
    version: int,
    request: PublishRequest,
    facts: EstimatorFacts,
    features: list[dict[str, str]],
) -> VersionFacts:
    """What the new version records of how it was made, and its changelog against the
    version it would replace (production's target, else the latest)."""
    production = next((a.version for a in model.aliases if a.name == DEFAULT_ALIAS), None)
    previous = lifecycle.replaced(list(model.versions), production)
    params = lifecycle.params_of(facts.estimator)
    origin = request.origin
    data_sha = None
    if origin is not None:
        data_sha = origin.training_data_sha256 or origin.details.get("training_data_sha256")
    made = lifecycle.Made(version, params, [f["name"] for f in features], data_sha)
    return VersionFacts(
        params=params,
        libraries=lifecycle.libraries(
            facts.sklearn_version, facts.skops_version, request.requirements
        ),
        note=request.note.strip(),
        compared_with=previous.version if previous is not None else None,
        changelog=lifecycle.changelog(lifecycle.made(previous), made) if previous else None,
    )


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def _change_summary(changelog: dict[str, Any] | None) -> dict[str, Any] | None:
    """The changelog for the audit chain: names only (its hashed fields take no floats,
    and parameter values may be any)."""
    if changelog is None:
        return None
    params = changelog["params_changed"]
    return {
        "from_version": changelog["from_version"],
        "params_changed": None if params is None else [p["name"] for p in params],
        "features_added": changelog["features_added"],
        "features_removed": changelog["features_removed"],
        "training_data_changed": changelog["training_data_changed"],
    }


def _refuse_duplicate(model: RegisteredModel, artifact: bytes) -> None:
    sha = hashlib.sha256(artifact).hexdigest()
    same = next((v for v in model.versions if v.sha256 == sha), None)
    if same is not None:
        raise Conflict(
            f"version {same.version} of {model.name!r} is this very artifact (sha256 "
            f"{sha[:12]}...); to publish it again as a new version, allow a duplicate"
        )


def check_model_name(name: str) -> None:
    if not _MODEL_NAME.fullmatch(name):
        raise InvalidInput(
            "invalid model name",
            [FieldError("name", "1-128 letters, digits, '.', '_' or '-', starting alphanumeric")],
        )


def _proof_rows(reference: ReferenceData | None, features: list[dict[str, str]]) -> Any:
    """The reference data's feature columns, on which the compiled model is proven
    equal (None: rows generated from the schema). Unreadable or incomplete data is
    refused when its profile is made; here it only falls back to generated rows."""
    if reference is None:
        return None
    try:
        frame = read_reference(reference)
        return estimator_input(frame, features, named=True)
    except InvalidInput:
        return None


def attempt_compilation(
    estimator: Any,
    features: list[dict[str, str]],
    classes: list[Any] | None,
    *,
    has_proba: bool,
    allow_missing: bool,
    runtime: str,
    reference: Any = None,
) -> compiled.Compilation:
    """Convert and prove as `runtime` asks; "onnx" refuses what is not proven."""
    if runtime == "sklearn":
        return compiled.Compilation(None, None, "the publisher chose scikit-learn")
    attempt = compiled.compile_estimator(
        estimator,
        features,
        classes,
        has_proba=has_proba,
        allow_missing=allow_missing,
        reference=reference,
    )
    if runtime == "onnx" and not attempt.proven:
        raise InvalidInput(
            f"runtime onnx refused: {attempt.reason}", [FieldError("runtime", attempt.reason)]
        )
    return attempt


def compiled_manifest(record: ModelVersion, outputs: list[str]) -> dict[str, Any]:
    """What a device needs to run the exported model as the appliance does."""
    row = record.compilation
    assert row is not None  # load_compiled refused versions without one
    return {
        "format": "onnx",
        "model": record.model.name,
        "version": record.version,
        "estimator": record.estimator_type,
        "sklearn_version": record.sklearn_version,
        "artifact_sha256": record.sha256,
        "onnx": {"sha256": row.sha256, "size": row.size},
        "input": {
            "name": compiled.INPUT_NAME,
            "dtype": (row.proof or {}).get("precision", "float32"),
            "shape": [None, len(record.features)],
            "features": record.features,
        },
        "outputs": outputs,
        "classes": record.classes,
        "has_proba": record.has_proba,
        "allow_missing": record.allow_missing,
        "proof": row.proof,
        "compiled_at": row.compiled_at.isoformat(),
        "compiled_by": row.compiled_by,
    }


def _hashable(proof: dict[str, Any] | None) -> dict[str, Any] | None:
    """The proof for the audit chain, whose hashed fields take no floats: as text."""
    if proof is None:
        return None
    return {k: format(v, ".6g") if isinstance(v, float) else v for k, v in proof.items()}


def check_runtime(runtime: str) -> None:
    if runtime not in compiled.RUNTIMES:
        raise InvalidInput(
            "invalid runtime", [FieldError("runtime", f"one of {', '.join(compiled.RUNTIMES)}")]
        )


def check_alias_name(alias: str) -> None:
    if not _ALIAS_NAME.fullmatch(alias):
        raise InvalidInput(
            "invalid alias name",
            [FieldError("alias", "lowercase letters, digits, '_' or '-', starting with a letter")],
        )


def feature_schema(
    facts: EstimatorFacts, declared: list[dict[str, str]] | None
) -> list[dict[str, str]]:
    """The input schema: declared at publish, else the estimator's names as float64."""
    if declared is None:
        names = facts.feature_names or [f"f{i}" for i in range(facts.n_features)]
        return [{"name": n, "dtype": "float64"} for n in names]
    errors = _declared_problems(declared, facts)
    if errors:
        raise InvalidInput("the declared feature schema does not fit the estimator", errors)
    return [{"name": str(f["name"]), "dtype": str(f["dtype"])} for f in declared]


def _declared_problems(declared: list[dict[str, str]], facts: EstimatorFacts) -> list[FieldError]:
    errors: list[FieldError] = []
    if len(declared) != facts.n_features:
        errors.append(
            FieldError(
                "features",
                f"the estimator takes {facts.n_features} features, {len(declared)} declared",
            )
        )
    names: list[object] = []
    for index, feature in enumerate(declared):
        name = feature.get("name") if isinstance(feature, dict) else None
        dtype = feature.get("dtype") if isinstance(feature, dict) else None
        if not isinstance(name, str) or not name or dtype not in DTYPES:
            errors.append(
                FieldError(f"features[{index}]", f"needs a name and a dtype in {', '.join(DTYPES)}")
            )
        names.append(name)
    if len(set(map(str, names))) != len(names):
        errors.append(FieldError("features", "feature names must be unique"))
    if facts.feature_names is not None and names != facts.feature_names:
        errors.append(
            FieldError("features", "names must equal the estimator's feature_names_in_, in order")
        )
    return errors
