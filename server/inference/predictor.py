"""The prediction core: resolve, decode, validate, predict, audit, in that order.

Every door (native, MLflow, Open Inference, batch) hands the core a `Call` (who
asked which model through which door) and a decoder for its body, and gets a
`PredictionResult` or a domain error. The core owns the whole lifecycle
(MLServer's DataPlane shape): whatever happens between the call and the answer,
success or refusal, ends as exactly one audit record written here. A success's
record is committed before the result is returned; if it cannot be,
AuditUnavailable is raised and nothing is served (fail closed).

A version proven equal in ONNX is answered by its ONNX Runtime session (rows
beyond 32-bit floats, which it computes in, by the estimator); the result and
its record name the runtime that answered. Explanations always come from the
estimator.

The core knows no HTTP: what status a client gets for an error is the edge's
business, injected as `classify` so the record says what the client got.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from governance.accounts.actor import ANONYMOUS, Actor
from governance.accounts.budgets import Budgets, rounded
from governance.accounts.roles import allows
from governance.audit.service import AuditEvent, PersonalRow
from governance.audit.writer import AuditWriter
from governance.crypto.keyring import WrappedKey
from governance.db import read_session
from governance.errors import (
    AuditUnavailable,
    CofreError,
    FieldError,
    InvalidInput,
    PermissionDenied,
)
from governance.registry.artifacts import ONNX
from governance.registry.compiled import CompiledEstimator
from governance.registry.loading import load_trusted
from governance.registry.records import ModelVersion
from governance.registry.retirement import Ending, ending_of, refuse_gone
from governance.registry.service import DEFAULT_ALIAS, Registry
from governance.rollouts import routing
from governance.rollouts.routing import CANDIDATE, CHAMPION, Plan, Routed
from governance.subjects.explanations import explain
from server import metrics
from server.inference.cache import LruCache, TtlCache
from server.inference.rollouts import RolloutTraffic
from server.inference.table import Schema, Table, to_model_input

log = logging.getLogger("cofre.inference")
# The core gives an estimator fitted on named columns a plain array in the fitted
# order, after checking the names itself (`Predictor._input_schema`);
# scikit-learn's warning about the missing names would come with every request.
FEATURE_NAMES_WARNING = "X does not have valid feature names"
warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING, category=UserWarning)
MAX_SUBJECT_ID = 128
MAX_PURPOSE = 256
PERMISSION = "predict"
MAX_VERSION = 2**31 - 1
# Model-agnostic explanations cost about a second per row with thirty features.
MAX_EXPLAINED_ROWS = 20  # the registry's version column is a 32-bit integer
_VERSION_TEXT = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class Call:
    """One call through a door, as known before its body is read.

    `alias` and `version` are the caller's raw text (query string or path); the
    core checks them, so a malformed one is refused and audited like any error.
    """

    endpoint: str  # "native" | "mlflow" | "v2" | "batch"
    model: str
    request_id: str
    path: str = ""
    alias: str | None = None
    version: str | None = None
    client_request_id: str | None = None  # the caller's own id, kept in the audit record


@dataclass(frozen=True)
class CompiledFile:
    """Where a version's proven ONNX model is stored, and its data key."""

    sha256: str
    artifact_file: str
    kek_id: str
    wrapped_key: bytes


@dataclass(frozen=True)
class ServedVersion:
    """A plain snapshot of a registry version: what serving needs, no ORM session."""

    name: str
    version: int
    sha256: str
    schema: Schema
    has_proba: bool
    classes: list[Any] | None
    versions: tuple[int, ...]
    artifact_file: str
    kek_id: str
    wrapped_key: bytes
    compiled: CompiledFile | None = None  # set only for a version proven equal in ONNX
    ending: Ending | None = None  # deprecated or retired: its sunset, reason, successor

    @property
    def runtime(self) -> str:
        return "onnx" if self.compiled is not None else "sklearn"


@dataclass(frozen=True)
class Decoded:
    """A door's body, decoded for the version that will answer it.

    `wire` carries what only the door's encoder needs back (V2: the request id
    and the outputs asked for); the core passes it through untouched.
    """

    table: Table
    subject_ids: Sequence[str | None] | None = None
    purpose: str | None = None
    want_proba: bool = True
    proba_required: bool = False  # the client named the probabilities as an output
    explain: bool = False  # also each feature's contribution to each row's output
    wire: Any = None


# Who is calling: the door's authentication, run inside the core so that a refused
# credential is audited like any other refusal.
Caller = Callable[[], Actor]
# A door's decoder: it reads and decodes the body once the version is known (the
# V2 protocol needs the version's feature names to read its tensors).
Decoder = Callable[[ServedVersion], Decoded]
# The edge's mapping of an error to (status the client gets, short reason).
Classifier = Callable[[BaseException], tuple[int, str]]


@dataclass(frozen=True)
class PredictionResult:
    request_id: str
    name: str
    version: int
    sha256: str
    predictions: list[Any]
    probabilities: list[list[float]] | None
    classes: list[Any] | None
    decoded: Decoded
    explanations: list[dict[str, Any]] | None = None
    runtime: str = "sklearn"  # "onnx" when ONNX Runtime answered
    routed: Routed | None = None  # during a rollout: which variant answered and why
    ending: Ending | None = None  # a deprecated version's sunset: the doors say so


@dataclass(frozen=True)
class Limits:
    max_rows: int
    cache_size: int
    alias_ttl_seconds: float


class Predictor:
    """The core; one per worker, shared by every door."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: Registry,
        writer: AuditWriter,
        limits: Limits,
        classify: Classifier,
        traffic: RolloutTraffic | None = None,
        budgets: Budgets | None = None,
    ) -> None:
        self.sessions = sessions
        self.budgets = budgets
        self.registry = registry
        self.writer = writer
        self.limits = limits
        self.classify = classify
        self.traffic = traffic
        self.estimators: LruCache[Any] = LruCache(limits.cache_size)
        self._served: TtlCache[ServedVersion] = TtlCache(limits.alias_ttl_seconds)
        self._takes_arrays: dict[tuple[str, int, str], bool] = {}
        if traffic is not None:  # a promotion moves `production`: forget resolved aliases
            traffic.on_change.append(self._served.clear)

    # -- resolving --------------------------------------------------------------------
    def served_version(
        self, actor: Actor, name: str, alias: str | None = None, version: int | None = None
    ) -> ServedVersion:
        """The version a request means, as cached for at most the alias TTL."""
        if not actor.may_use_model(name):
            raise PermissionDenied("this API key may not use that model")
        return self._served.get_or_load(
            (name, alias, version), lambda: self._resolve(name, alias, version)
        )

    def _resolve(self, name: str, alias: str | None, version: int | None) -> ServedVersion:
        with read_session(self.sessions) as session:
            record = self.registry.resolve(session, name, alias=alias, version=version)
            return _snapshot(record)

    def estimator(self, served: ServedVersion) -> Any:
        """The scikit-learn estimator (explanations always use it)."""
        return self.estimators.get_or_load(
            (served.name, served.version, served.sha256), lambda: self._load(served)
        )

    def runner(self, served: ServedVersion) -> Any:
        """What answers for the version: its ONNX Runtime session once proven equal,
        else the estimator. Both live in the one bounded cache."""
        compiled = served.compiled
        if compiled is None:
            return self.estimator(served)
        return self.estimators.get_or_load(
            (served.name, served.version, served.sha256, ONNX),
            lambda: self._load_compiled(served, compiled),
        )

    def _input_schema(self, served: ServedVersion, estimator: Any) -> Schema:
        """The schema to build the estimator's input with: as recorded, or unnamed
        (a plain float array) when the estimator answers an array exactly as it
        answers a DataFrame. scikit-learn validates a DataFrame's names and dtypes
        on every call, three times the cost of a one-row logistic regression; the
        core has checked the names already and puts the columns in fitted order."""
        if not served.schema.named:
            return served.schema
        key = (served.name, served.version, served.sha256)
        takes_arrays = self._takes_arrays.get(key)
        if takes_arrays is None:
            takes_arrays = self._takes_arrays[key] = _answers_arrays_alike(estimator, served.schema)
        return replace(served.schema, named=False) if takes_arrays else served.schema

    def _check_provenance(self, served: ServedVersion) -> None:
        """Who vouches for the version, checked again at every load (skops or its ONNX
        compilation), before any byte is deserialised: a signer removed since
        publishing stops it loading here. So does a scikit-learn minor version other
        than the one it was trained (or last verified) under."""
        with read_session(self.sessions) as session:
            record = self.registry.resolve(session, served.name, version=served.version)
            self.registry.verify_provenance(session, record)
            self.registry.refuse_unverified(record)

    def _load(self, served: ServedVersion) -> Any:
        self._check_provenance(served)
        plaintext = self.registry.store.get(
            served.name,
            served.version,
            served.sha256,
            served.artifact_file,
            WrappedKey(served.kek_id, served.wrapped_key),
        )
        return load_trusted(plaintext)

    def _load_compiled(self, served: ServedVersion, compiled: CompiledFile) -> CompiledEstimator:
        self._check_provenance(served)
        plaintext = self.registry.store.get(
            served.name,
            served.version,
            compiled.sha256,
            compiled.artifact_file,
            WrappedKey(compiled.kek_id, compiled.wrapped_key),
            ONNX,
        )
        return CompiledEstimator(plaintext, served.classes)

    # -- predicting -------------------------------------------------------------------
    def predict(self, caller: Caller, call: Call, decode: Decoder) -> PredictionResult:
        """Answer one call, audited: its success record committed, or its refusal
        recorded and the error raised again for the door to translate."""
        started = time.perf_counter()
        actor, served = ANONYMOUS, None
        turn = _Turn()
        try:
            actor = caller()
            if not allows(actor.role, PERMISSION):
                raise PermissionDenied("your role does not allow predictions")
            alias, version = parse_selector(call.alias, call.version)
            plan = self._plan(actor, call.model, alias, version)
            if plan is not None:
                return self._route(actor, call, plan, decode, started, turn)
            served = self.served_version(actor, call.model, alias, version)
            decoded = decode(served)
            self._charge(actor, decoded)
            return self._answer(actor, call, served, decoded, started)
        except Exception as exc:
            if turn.plan is not None and turn.routed is not None:
                self._tally(turn.plan, turn.routed, started, error=True)
            error = _unauditable(exc)
            self.refuse(actor, call, error, turn.served or served, turn.routed)
            if error is exc:
                raise
            raise error from exc

    # -- rollouts ---------------------------------------------------------------------
    def _plan(self, actor: Actor, name: str, alias: str | None, version: int | None) -> Plan | None:
        """The rollout routing this call: only calls for `production` are routed; an
        explicit version or another alias is answered as asked."""
        if self.traffic is None or version is not None or alias not in (None, DEFAULT_ALIAS):
            return None
        if not actor.may_use_model(name):
            raise PermissionDenied("this API key may not use that model")
        return self.traffic.plan(name)

    def _route(
        self, actor: Actor, call: Call, plan: Plan, decode: Decoder, started: float, turn: _Turn
    ) -> PredictionResult:
        turn.plan = plan
        champion = turn.served = self.served_version(actor, call.model, version=plan.champion)
        decoded = decode(champion)
        _check_context(decoded)
        self._charge(actor, decoded)
        pseudonyms = [
            self.writer.audit.pseudonym(s) if s else None for s in decoded.subject_ids or []
        ]
        variant, reason = routing.choose(plan, call.request_id, pseudonyms)
        if variant == CANDIDATE:
            candidate = self.served_version(actor, call.model, version=plan.candidate)
            if plan.strategy == "blue-green" and not self._warm(plan, candidate):
                variant, reason = CHAMPION, routing.WARMING
            else:
                return self._candidate_answers(
                    actor, call, plan, candidate, decoded, decode, started, turn, reason
                )
        turn.routed = Routed(plan.id, CHAMPION, reason)
        result = self._answer(actor, call, champion, decoded, started, turn.routed)
        self._tally(plan, turn.routed, started)
        if plan.strategy == "shadow":
            candidate = self.served_version(actor, call.model, version=plan.candidate)
            self._shadow(actor, call, plan, candidate, CANDIDATE, decoded, result)
        return result

    def _candidate_answers(
        self,
        actor: Actor,
        call: Call,
        plan: Plan,
        candidate: ServedVersion,
        decoded: Decoded,
        decode: Decoder,
        started: float,
        turn: _Turn,
        reason: str,
    ) -> PredictionResult:
        champion = turn.served
        assert champion is not None
        turn.routed, turn.served = Routed(plan.id, CANDIDATE, reason), candidate
        try:
            own = decoded if candidate.schema.names == champion.schema.names else decode(candidate)
            result = self._answer(actor, call, candidate, own, started, turn.routed)
        except (AuditUnavailable, PermissionDenied):
            raise
        except Exception as exc:  # the candidate failed: counted, and the champion answers
            self._tally(plan, turn.routed, started, error=True)
            slug = self.classify(exc)[1]
            turn.routed = Routed(plan.id, CHAMPION, routing.FALLBACK, slug)
            turn.served = champion
            result = self._answer(actor, call, champion, decoded, started, turn.routed)
            self._tally(plan, turn.routed, started)
            return result
        self._tally(plan, turn.routed, started)
        self._shadow(actor, call, plan, champion, CHAMPION, own, result)
        return result

    def _charge(self, actor: Actor, decoded: Decoded) -> None:
        """Count the call against its key's budget once its rows are known, before any
        is scored (once per call: a candidate's fallback is not a second call)."""
        rows = len(decoded.table.rows)
        if self.budgets is not None and rows <= self.limits.max_rows:  # else refused unscored
            self.budgets.charge(actor, rows)

    def _warm(self, plan: Plan, candidate: ServedVersion) -> bool:
        """Blue-green: True once this worker holds the candidate loaded; until then the
        champion answers and the candidate is loaded off the request's path."""
        if self.holds(candidate):
            return True
        assert self.traffic is not None
        self.traffic.submit(plan, lambda: self._load_warm(candidate))
        return False

    def holds(self, served: ServedVersion) -> bool:
        """Whether this worker has what answers for `served` loaded."""
        key = (served.name, served.version, served.sha256)
        return ((*key, ONNX) if served.compiled is not None else key) in self.estimators

    def _load_warm(self, served: ServedVersion) -> None:
        runner = self.runner(served)
        if served.compiled is None:
            self._input_schema(served, runner)

    def _tally(self, plan: Plan, routed: Routed, started: float, error: bool = False) -> None:
        assert self.traffic is not None
        seconds = time.perf_counter() - started
        self.traffic.count(plan, routed.variant, routed.reason, seconds, error)

    def _shadow(
        self,
        actor: Actor,
        call: Call,
        plan: Plan,
        other: ServedVersion,
        variant: str,
        decoded: Decoded,
        answered: PredictionResult,
    ) -> None:
        """Have `other` score the same rows off the request's path (shadow rollouts; in
        canary and A/B, the champion's view of what the candidate answered)."""
        assert self.traffic is not None
        self.traffic.submit(
            plan, lambda: self._shadow_score(actor, call, plan, other, variant, decoded, answered)
        )

    def _shadow_score(
        self,
        actor: Actor,
        call: Call,
        plan: Plan,
        other: ServedVersion,
        variant: str,
        decoded: Decoded,
        answered: PredictionResult,
    ) -> None:
        assert self.traffic is not None
        started = time.perf_counter()
        shadow_routed = Routed(plan.id, variant, routing.SHADOW)
        try:
            with_proba = other.has_proba and decoded.want_proba and not actor.labels_only
            runtime, (labels, proba), rows = self._run(other, decoded.table, with_proba)
        except Exception as exc:
            if variant == CANDIDATE:  # a failing shadow candidate counts as failing
                self.traffic.count(
                    plan, CANDIDATE, routing.SHADOW, time.perf_counter() - started, True
                )
            log.info("shadow scoring of %s failed: %s", call.request_id, type(exc).__name__)
            return
        if variant == CANDIDATE:
            self.traffic.count(
                plan, CANDIDATE, routing.SHADOW, time.perf_counter() - started, False
            )
        agreed = sum(_agree(a, b) for a, b in zip(labels, answered.predictions, strict=True))
        self.traffic.compared(plan, len(labels), agreed)
        shadow = replace(
            answered,
            version=other.version,
            sha256=other.sha256,
            predictions=labels,
            probabilities=proba,
            explanations=None,
            runtime=runtime,
            routed=shadow_routed,
        )
        event = _success_event(actor, call, decoded, other, rows, shadow, 0)
        event.kind = "prediction.shadow"
        assert event.details is not None
        event.details |= {"agreed": agreed, "answered_by": answered.version}
        self.writer.submit(event).add_done_callback(_log_unaudited_shadow)

    def _answer(
        self,
        actor: Actor,
        call: Call,
        served: ServedVersion,
        decoded: Decoded,
        started: float,
        routed: Routed | None = None,
    ) -> PredictionResult:
        # Past its sunset or retired: Gone, naming the successor, audited as a refusal.
        refuse_gone(served.name, served.version, served.ending)
        _check_context(decoded)
        if decoded.proba_required and actor.labels_only:
            raise PermissionDenied("this API key receives labels only, not probabilities")
        with_proba = served.has_proba and decoded.want_proba and not actor.labels_only
        runtime, (labels, proba), rows = self._run(served, decoded.table, with_proba)
        if proba is not None:  # rounded before the record: it says what the client got
            proba = rounded(proba, actor.precision)
        result = PredictionResult(
            call.request_id,
            served.name,
            served.version,
            served.sha256,
            labels,
            proba,
            served.classes if proba is not None else None,
            decoded,
            _explanations(self.estimator(served), served, rows) if decoded.explain else None,
            runtime,
            routed,
            served.ending,
        )
        latency_ms = int((time.perf_counter() - started) * 1000)
        self.writer.append(_success_event(actor, call, decoded, served, rows, result, latency_ms))
        self._count(served, call.endpoint, "ok", len(rows), time.perf_counter() - started)
        return result

    def _run(
        self, served: ServedVersion, table: Table, with_proba: bool
    ) -> tuple[str, tuple[list[Any], list[list[float]] | None], list[dict[str, Any]]]:
        """(runtime that answered, its answer, the rows as validated). The compiled
        model computes in 32-bit floats; rows beyond their range go to the estimator."""
        runner = self.runner(served)
        if isinstance(runner, CompiledEstimator):
            plain = replace(served.schema, named=False)
            features, rows = to_model_input(table, plain, self.limits.max_rows)
            if runner.fits(features):
                return "onnx", _score_compiled(runner, features, with_proba), rows
            runner = self.estimator(served)
        schema = self._input_schema(served, runner)
        features, rows = to_model_input(table, schema, self.limits.max_rows)
        return "sklearn", _score(runner, features, with_proba), rows

    def refuse(
        self,
        actor: Actor,
        call: Call,
        error: BaseException,
        served: ServedVersion | None = None,
        routed: Routed | None = None,
    ) -> None:
        """Record a call that was not answered (refused before or inside the core),
        without its body. Never raises: the caller is answering an error already."""
        status, reason = self.classify(error)
        outcome = "denied" if status in (401, 403) else "error" if status >= 500 else "rejected"
        metrics.PREDICTIONS.labels(
            _bounded(call.model, 128), str(served.version) if served else "", call.endpoint, outcome
        ).inc()
        event = AuditEvent(
            kind="prediction",
            actor=actor,
            outcome=outcome,
            status=status,
            endpoint=call.endpoint,
            request_id=call.request_id,
            model_name=call.model,
            model_version=served.version if served else None,
            artifact_sha256=served.sha256 if served else None,
            details={"reason": reason, "path": call.path}
            | _client_id(call)
            | (routed.as_dict() if routed else {}),
        )
        try:
            self.writer.append(event)
        except CofreError as exc:  # the answer is an error already; say so in the log
            log.error("could not audit a refused call %s: %s", call.request_id, exc.detail)

    def _count(
        self, served: ServedVersion, endpoint: str, outcome: str, rows: int, seconds: float
    ) -> None:
        version = str(served.version)
        metrics.PREDICTIONS.labels(served.name, version, endpoint, outcome).inc()
        metrics.PREDICTION_ROWS.labels(served.name, version, endpoint).inc(rows)
        metrics.LATENCY.labels(served.name, version, endpoint).observe(seconds)


@dataclass
class _Turn:
    """How far a routed call got: for its refusal's record and its variant's tally."""

    plan: Plan | None = None
    served: ServedVersion | None = None
    routed: Routed | None = None


def _log_unaudited_shadow(done: Future[Any]) -> None:
    """A shadow output whose record failed is lost with it (nobody was answered from
    it); the log says so."""
    error = done.exception()
    if error is not None:
        log.error("a shadow output could not be audited: %s", type(error).__name__)


def _agree(a: Any, b: Any) -> bool:
    """Two outputs agree when equal; numbers (regressions) when within 1 % of each other."""
    if isinstance(a, float) or isinstance(b, float):
        try:
            return bool(abs(float(a) - float(b)) <= 0.01 * max(abs(float(a)), abs(float(b))))
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def parse_selector(alias: str | None, version: str | None) -> tuple[str | None, int | None]:
    """A call's alias or version (not both); versions are ASCII digits, 1..2**31-1."""
    if alias is not None and version is not None:
        raise InvalidInput(
            "give alias or version, not both", [FieldError("version", "not together with alias")]
        )
    if version is None:
        return alias, None
    if not _VERSION_TEXT.fullmatch(version) or not 1 <= int(version) <= MAX_VERSION:
        raise InvalidInput(
            "version must be a positive integer",
            [FieldError("version", f"ASCII digits, 1 to {MAX_VERSION}")],
        )
    return None, int(version)


def _snapshot(record: ModelVersion) -> ServedVersion:
    schema = Schema(
        names=tuple(f["name"] for f in record.features),
        dtypes=tuple(f["dtype"] for f in record.features),
        named=record.named_features,
        allow_missing=record.allow_missing,
    )
    compilation = record.compilation
    compiled = None
    if compilation is not None and compilation.runtime == "onnx" and compilation.artifact_file:
        compiled = CompiledFile(
            compilation.sha256 or "",
            compilation.artifact_file,
            compilation.kek_id or "",
            compilation.wrapped_key or b"",
        )
    return ServedVersion(
        name=record.model.name,
        version=record.version,
        sha256=record.sha256,
        schema=schema,
        has_proba=record.has_proba,
        classes=record.classes,
        versions=tuple(v.version for v in record.model.versions),
        artifact_file=record.artifact_file,
        kek_id=record.kek_id,
        wrapped_key=record.wrapped_key,
        compiled=compiled,
        ending=ending_of(record),
    )


def _explanations(
    estimator: Any, served: ServedVersion, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each row's explanation by the version answering it, computed before the answer
    is recorded, so an answer is never served without what it promised."""
    if len(rows) > MAX_EXPLAINED_ROWS:
        raise InvalidInput(
            f"explanations are given for at most {MAX_EXPLAINED_ROWS} rows per request",
            [FieldError("explain", f"at most {MAX_EXPLAINED_ROWS} rows")],
        )
    return [e.as_dict() for e in explain(estimator, served.schema.names, rows)]


def _check_context(decoded: Decoded) -> None:
    errors: list[FieldError] = []
    subject_ids, purpose = decoded.subject_ids, decoded.purpose
    if subject_ids is not None:
        if len(subject_ids) != len(decoded.table.rows):
            errors.append(FieldError("subject_ids", "needs exactly one entry per row"))
        elif not all(
            s is None or (isinstance(s, str) and 0 < len(s) <= MAX_SUBJECT_ID) for s in subject_ids
        ):
            errors.append(
                FieldError(
                    "subject_ids", f"entries are strings of 1-{MAX_SUBJECT_ID} characters or null"
                )
            )
    if purpose is not None and not (isinstance(purpose, str) and len(purpose) <= MAX_PURPOSE):
        errors.append(FieldError("purpose", f"a string of at most {MAX_PURPOSE} characters"))
    if errors:
        raise InvalidInput("invalid request context", errors)


def _success_event(
    actor: Actor,
    call: Call,
    decoded: Decoded,
    served: ServedVersion,
    rows: list[dict[str, Any]],
    result: PredictionResult,
    latency_ms: int,
) -> AuditEvent:
    subject_ids = decoded.subject_ids or [None] * len(rows)
    personal = [
        PersonalRow(subject, _audited_row(row, result, index))
        for index, (row, subject) in enumerate(zip(rows, subject_ids, strict=True))
    ]
    return AuditEvent(
        kind="prediction",
        actor=actor,
        outcome="ok",
        status=200,
        endpoint=call.endpoint,
        request_id=call.request_id,
        model_name=served.name,
        model_version=served.version,
        artifact_sha256=served.sha256,
        purpose=decoded.purpose,
        rows=personal,
        details={
            "rows": len(rows),
            "latency_ms": latency_ms,
            "path": call.path,
            "explained": result.explanations is not None,
            "runtime": result.runtime,
        }
        | _client_id(call)
        | (result.routed.as_dict() if result.routed else {}),
    )


def _unauditable(exc: Exception) -> Exception:
    """A prediction that met an unreachable or locked database (reading the key, the
    version, the budget) could not have been audited either: the client is told so,
    as when the writer itself fails, whichever step met the database first."""
    if isinstance(exc, OperationalError | InterfaceError):
        return AuditUnavailable(
            "the database cannot be reached, so no audit record can be written; "
            "nothing was served; retry later"
        )
    return exc


def _client_id(call: Call) -> dict[str, str]:
    return {"client_request_id": call.client_request_id} if call.client_request_id else {}


# Classifiers whose predict() is the argmax of predict_proba(): in scikit-learn's
# own code for the trees, and for logistic regression because its probabilities are
# a monotone function (expit, softmax) of the decision function that predict()
# takes the argmax of. When probabilities are wanted anyway, one pass gives both.
LABELS_FROM_PROBA = frozenset(
    {
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
    }
)


def _score(
    estimator: Any, features: Any, with_proba: bool
) -> tuple[list[Any], list[list[float]] | None]:
    try:
        if with_proba:
            proba = estimator.predict_proba(features)
            labels = _labels_from(estimator, proba) if _argmax_predicts(estimator) else None
            labels = estimator.predict(features) if labels is None else labels
            return labels.tolist(), proba.tolist()
        return estimator.predict(features).tolist(), None
    except (ValueError, TypeError) as exc:
        # The values passed the schema but the model cannot use them (e.g. an unseen
        # category): a client problem. The message may quote input, so it stays in logs.
        log.info("model refused input: %s", type(exc).__name__)
        raise InvalidInput("the model could not score this input") from None


def _score_compiled(
    compiled: CompiledEstimator, features: Any, with_proba: bool
) -> tuple[list[Any], list[list[float]] | None]:
    labels, proba = compiled.answer(features, with_proba)
    return labels.tolist(), proba.tolist() if proba is not None else None


def _answers_arrays_alike(estimator: Any, schema: Schema) -> bool:
    """True when a float array gets the same answers as a DataFrame of the same rows.

    Probed once per loaded version on a few rows of the schema's width: all-float
    schemas only; any error, or any difference, keeps the DataFrame (a column
    transformer selecting columns by name needs it)."""
    if set(schema.dtypes) != {"float64"}:
        return False
    probe = np.linspace(-1.0, 1.0, 3 * len(schema.names)).reshape(3, len(schema.names))
    frame = pd.DataFrame(probe, columns=list(schema.names))
    try:
        for method in ("predict", "predict_proba"):
            if hasattr(estimator, method):
                by_name, by_position = (
                    getattr(estimator, method)(frame),
                    getattr(estimator, method)(probe),
                )
                if not np.array_equal(np.asarray(by_name), np.asarray(by_position)):
                    return False
    except Exception:  # the estimator cannot take arrays (or this probe): keep names
        return False
    return True


def _argmax_predicts(estimator: Any) -> bool:
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    return f"{type(final).__module__}.{type(final).__qualname__}" in LABELS_FROM_PROBA


def _labels_from(estimator: Any, proba: Any) -> Any:
    if not isinstance(proba, np.ndarray) or proba.ndim != 2:  # multi-output: no shortcut
        return None
    return estimator.classes_.take(np.argmax(proba, axis=1))


def _audited_row(row: dict[str, Any], result: PredictionResult, index: int) -> dict[str, Any]:
    audited: dict[str, Any] = {"input": row, "output": result.predictions[index]}
    if result.probabilities is not None:
        audited["proba"] = result.probabilities[index]
    return audited


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]
